"""Bulk email (newsletters): staff-written content, rendered per recipient in Jinja2's
sandbox, then framed by the product's `newsletter` template like every other email.

Staff text is never given to the renderer's own environment (which trusts its templates:
it can reach any attribute of what it is given). Here it is compiled by an
`ImmutableSandboxedEnvironment`: no attributes starting with `_`, no mutation of what it is
given, ranges capped; only the merge fields below are defined, and any other name is an
error when the draft is created, not when 10 000 emails render.

A bulk email carries RFC 8058 one-click unsubscribe: `List-Unsubscribe: <url>` and
`List-Unsubscribe-Post: List-Unsubscribe=One-Click`; the same link is in both parts'
footers. Transactional emails (codes, resets, notices) carry none.

The email service knows no newsletter: the dispatcher is given a `ContentLoader` that
returns the source of the rows' `newsletter_id`s (compiled where the rows are composed,
app.services.email.composer).
"""

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

# The names staff may use, with what a preview shows for them.
MERGE_FIELDS = {
    "name": "Анна",
    "unsubscribe_url": "http://localhost:8000/unsubscribe/sample",
}
TEMPLATE = "newsletter"  # the product template that frames bulk content


class ContentError(ValueError):
    """Staff content that cannot render: a syntax error, an unknown name, a sandbox refusal,
    an expression that fails (`1/0`, a range over the sandbox's cap). Its text is
    `part: line N: reason`."""

    def __init__(self, part: str, reason: str) -> None:
        super().__init__(f"{part}: {reason}")


def _environment(*, html: bool) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        autoescape=html, undefined=StrictUndefined, keep_trailing_newline=True, auto_reload=False
    )


_HTML_ENV = _environment(html=True)
_TEXT_ENV = _environment(html=False)


@dataclass(frozen=True, slots=True)
class BulkContent:
    """One campaign's compiled parts; `render` is thread-safe (the dispatcher composes in
    a worker thread)."""

    subject: Template
    html: Template
    text: Template

    def render(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The `newsletter` template's data for one recipient: the staff parts rendered
        with the merge fields (escaped in the HTML part), and the unsubscribe link."""
        values = {name: fields[name] for name in MERGE_FIELDS}
        return {
            "newsletter_subject": " ".join(self.subject.render(values).split()),
            "newsletter_html": Markup(self.html.render(values)),
            "newsletter_text": self.text.render(values).strip(),
            "unsubscribe_url": values["unsubscribe_url"],
        }


def compile_content(*, subject: str, html: str, text: str) -> BulkContent:
    """Compile and try staff content with sample merge fields; ContentError says which part
    failed and why."""
    parts: dict[str, Template] = {}
    for part, source, env in (
        ("subject", subject, _TEXT_ENV),
        ("html", html, _HTML_ENV),
        ("text", text, _TEXT_ENV),
    ):
        try:
            template = env.from_string(source)
            template.render(MERGE_FIELDS)
        except Exception as exc:  # whatever the staff's expressions raise is their error
            raise ContentError(part, _reason(exc)) from None
        parts[part] = template
    content = BulkContent(**parts)
    if not content.render(MERGE_FIELDS)["newsletter_subject"]:
        raise ContentError("subject", "the subject is empty")
    return content


def _reason(exc: Exception) -> str:
    """`line N: what went wrong`, one line of at most 200 characters of message."""
    if isinstance(exc, TemplateError):
        message = exc.message or type(exc).__name__
    else:
        message = f"{type(exc).__name__}: {exc}"
    message = " ".join(message.split())[:200]
    line = getattr(exc, "lineno", None) or _template_line(exc)
    return f"line {line}: {message}" if line else message


def _template_line(exc: BaseException) -> int | None:
    """The template line an error was raised from: Jinja2 rewrites the traceback so that
    the template's frames carry its own line numbers (under the name `<template>`)."""
    line = None
    frame = exc.__traceback__
    while frame is not None:
        if frame.tb_frame.f_code.co_filename == "<template>":
            line = frame.tb_lineno
        frame = frame.tb_next
    return line


def unsubscribe_headers(url: str) -> tuple[tuple[str, str], ...]:
    """RFC 2369 and RFC 8058 one-click unsubscribe."""
    return (
        ("List-Unsubscribe", f"<{url}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    )


@dataclass(frozen=True, slots=True)
class BulkSource:
    """A newsletter's staff-written source, as stored (plain strings: it may travel to a
    composing process, which compiles it once)."""

    subject: str
    html: str
    text: str

    def compile(self) -> BulkContent:
        return compile_content(subject=self.subject, html=self.html, text=self.text)


# Given to the dispatcher: the source of these newsletters' content, by id.
ContentLoader = Callable[[AsyncSession, Collection[UUID]], Awaitable[Mapping[UUID, BulkSource]]]
