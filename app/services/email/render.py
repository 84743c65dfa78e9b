"""Email templates to a subject, a text part and an HTML part with its CSS inlined.

Layout of `templates/email/` (see its README): `<locale>/<name>.txt` sets the subject
(`{% set subject = ... %}`) and holds the text part; `<locale>/<name>.html` holds the HTML
part; both extend a layout (`_layout.txt`, `_layout.html`); `style.css` is inlined into
`style=""` attributes at render time. Files whose name starts with `_` are not emails.

The renderer is built once per app: the Jinja2 environment and every compiled template
are loaded at construction (a broken template fails start-up, not the first send), and
`render` only reads shared state, so it is safe to call from several threads at once.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape

TEMPLATES_DIR = Path(__file__).resolve().parents[3] / "templates" / "email"
LOCALES = ("ru", "en")
STYLESHEET = "style.css"
PARTS = ("txt", "html")


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str  # CSS inlined into style="" attributes


class UnknownTemplate(LookupError):
    """No email template by that name."""


def ru_plural(number: int, one: str, few: str, many: str) -> str:
    """The Russian word form for a count: 1 минуту, 2 минуты, 5 минут, 21 минуту."""
    n = abs(number)
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


class TemplateRenderer:
    def __init__(self, directory: Path = TEMPLATES_DIR, *, public_base_url: str) -> None:
        """`public_base_url`: the site's address for links (Settings.PUBLIC_BASE_URL).

        Every template is compiled here, once; none is read again (so no auto_reload)."""
        self.directory = directory
        self.public_base_url = public_base_url.rstrip("/")
        self._env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self._env.filters["ru_plural"] = ru_plural
        self._inliner = css_inline.CSSInliner(
            extra_css=(directory / STYLESHEET).read_text(encoding="utf-8"),
            load_remote_stylesheets=False,
            keep_style_tags=False,
            keep_link_tags=False,
        )
        self._templates = self._load_all()

    def _load_all(self) -> dict[tuple[str, str, str], Template]:
        """Every (name, locale, part) compiled; each email must exist in every locale,
        as text and as HTML."""
        found = {
            path.stem
            for locale in LOCALES
            for part in PARTS
            for path in (self.directory / locale).glob(f"*.{part}")
            if not path.name.startswith("_")
        }
        templates = {}
        for name in sorted(found):
            for locale in LOCALES:
                for part in PARTS:
                    path = f"{locale}/{name}.{part}"
                    if not (self.directory / path).is_file():
                        raise RuntimeError(f"email template {name!r} lacks {path}")
                    templates[name, locale, part] = self._env.get_template(path)
        return templates

    def names(self) -> list[str]:
        """Every email template name, sorted."""
        return sorted({name for name, _, _ in self._templates})

    def render(self, template: str, locale: str, data: Mapping[str, Any]) -> RenderedEmail:
        """Render one email; an undefined variable raises jinja2.UndefinedError."""
        if locale not in LOCALES:
            raise ValueError(f"unknown email locale {locale!r}: use one of {', '.join(LOCALES)}")
        try:
            text_template = self._templates[template, locale, "txt"]
            html_template = self._templates[template, locale, "html"]
        except KeyError:
            raise UnknownTemplate(template) from None
        context = {**data, "locale": locale, "public_base_url": self.public_base_url}
        text_module = text_template.make_module(context)
        subject = " ".join(str(getattr(text_module, "subject", "")).split())
        if not subject:
            raise RuntimeError(f"{locale}/{template}.txt sets no subject")
        text = str(text_module).strip() + "\n"
        html = html_template.render({**context, "subject": subject})
        return RenderedEmail(subject=subject, text=text, html=self._inliner.inline(html))
