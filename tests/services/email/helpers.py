"""Helpers for the email tests."""

import shutil
from pathlib import Path

from app.services.email.render import TEMPLATES_DIR


def templates_with(tmp_path: Path, name: str, text: str, html: str) -> Path:
    """A copy of the email templates with one more email, `name`, the same in every
    locale."""
    directory = tmp_path / "email"
    shutil.copytree(TEMPLATES_DIR, directory)
    for locale in ("ru", "en"):
        (directory / locale / f"{name}.txt").write_text(text, encoding="utf-8")
        (directory / locale / f"{name}.html").write_text(html, encoding="utf-8")
    return directory
