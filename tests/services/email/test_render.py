"""Templates render to a subject, text and inlined HTML: every one, in every locale."""

import html
import re
import shutil
from pathlib import Path

import pytest
from jinja2 import UndefinedError, meta

from app.services.email.render import (
    LOCALES,
    TEMPLATES_DIR,
    TemplateRenderer,
    UnknownTemplate,
    ru_plural,
)
from app.services.email.samples import SAMPLES
from tests.services.email.helpers import templates_with

BASE_URL = "https://shop.test"
EXPECTED = [
    "confirmation_code",
    "email_changed",
    "newsletter",
    "newsletter_test",
    "order_status",
    "password_changed",
    "password_reset",
]
CYRILLIC = re.compile(r"[А-Яа-яЁё]")
# A newsletter's staff-written parts (app.services.email.bulk): each goes to one part.
ONE_PART = {"newsletter_subject": "subject", "newsletter_html": "html", "newsletter_text": "text"}
# Data that chooses what a template says rather than being shown (the order's status value;
# its label in the email's language is shown).
SELECTORS = {"order_status": {"status"}}


def untagged(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


# Built for each test (a few ms), not once per module: mutation testing (`make mutate`)
# runs a mutant of the constructor only against the tests that called it.
@pytest.fixture
def renderer() -> TemplateRenderer:
    return TemplateRenderer(public_base_url=BASE_URL)


def test_the_templates_are_the_expected_ones_and_each_has_a_sample(renderer):
    assert renderer.names() == EXPECTED
    assert sorted(SAMPLES) == renderer.names()


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", EXPECTED)
def test_every_template_renders_with_its_sample(renderer, name, locale):
    email = renderer.render(name, locale, SAMPLES[name])
    assert email.subject and "\n" not in email.subject
    assert email.text.strip() and email.html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{locale}">' in email.html
    assert f"<title>{email.subject}</title>" in email.html
    for key, value in SAMPLES[name].items():  # every piece of data reaches both parts...
        if key in ONE_PART:  # ...but a newsletter's staff content: one piece per part
            assert untagged(str(value)) in untagged(getattr(email, ONE_PART[key]))
            continue
        if key in SELECTORS.get(name, ()):
            continue
        assert str(value) in email.text
        assert str(value) in html.unescape(email.html)  # &amp;, &nbsp; (css-inline writes it)
    frame = email.subject + email.text  # what the template says, without the data
    for value in SAMPLES[name].values():
        frame = frame.replace(str(value), "")
    assert bool(CYRILLIC.search(frame)) == (locale == "ru")


@pytest.mark.parametrize("name", EXPECTED)
def test_samples_carry_no_variable_the_template_does_not_use(renderer, name):
    used: set[str] = set()
    for locale in LOCALES:
        for part in ("txt", "html"):
            source = (TEMPLATES_DIR / locale / f"{name}.{part}").read_text(encoding="utf-8")
            used |= meta.find_undeclared_variables(renderer._env.parse(source))
    assert set(SAMPLES[name]) <= used, set(SAMPLES[name]) - used


@pytest.mark.parametrize("missing", ["name", "code", "ttl_minutes"])
def test_a_missing_variable_is_an_error_not_an_empty_string(renderer, missing):
    data = {k: v for k, v in SAMPLES["confirmation_code"].items() if k != missing}
    with pytest.raises(UndefinedError, match=missing):
        renderer.render("confirmation_code", "ru", data)


def test_html_escapes_data_and_text_keeps_it_as_written(renderer):
    data = {**SAMPLES["confirmation_code"], "name": "<script>alert(1)</script> & Co"}
    email = renderer.render("confirmation_code", "en", data)
    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in email.html
    assert "Hello, <script>alert(1)</script> & Co!" in email.text


def test_css_is_inlined_and_no_stylesheet_is_left(renderer):
    html = renderer.render("password_reset", "ru", SAMPLES["password_reset"]).html
    assert "<style" not in html and "<link" not in html
    code = renderer.render("confirmation_code", "ru", SAMPLES["confirmation_code"]).html
    assert re.search(r'<p class="code" style="[^"]*font-size: 32px', code)
    assert re.search(r'<a class="button" [^>]*style="[^"]*background-color: #2563eb', html)
    # Every element styled by a class got that class's rules inlined.
    tags_with_class = re.findall(r"<[a-z0-9]+ [^>]*class=\"[^\"]+\"[^>]*>", html + code)
    assert tags_with_class and all('style="' in tag for tag in tags_with_class)
    # A selector by element (body, h1, p) too.
    assert re.search(r'<body style="[^"]*margin: 0', html)


def test_the_subject_is_the_text_templates_and_keeps_the_code_out(renderer):
    ru = renderer.render("confirmation_code", "ru", SAMPLES["confirmation_code"])
    en = renderer.render("confirmation_code", "en", SAMPLES["confirmation_code"])
    assert ru.subject == "Подтвердите адрес почты"
    assert en.subject == "Confirm your email address"
    assert "<title>Подтвердите адрес почты</title>" in ru.html
    # The code stays out of the subject: relay logs and lock-screen previews show subjects.
    assert "482915" not in ru.subject + en.subject
    assert "482915" in ru.text and "482915" in ru.html


def test_the_code_is_shown_big_in_html_and_on_its_own_line_in_text(renderer):
    email = renderer.render("confirmation_code", "ru", {**SAMPLES["confirmation_code"]})
    assert "\n    482915\n" in email.text
    assert re.search(r'<p class="code" [^>]*>482915</p>', email.html)
    assert "Код действует 10 минут." in email.text


def test_public_base_url_is_given_to_every_template(renderer):
    email = renderer.render("password_changed", "en", SAMPLES["password_changed"])
    assert f"{BASE_URL}/forgot-password" in email.text
    assert f'href="{BASE_URL}/forgot-password"' in email.html
    other = TemplateRenderer(public_base_url="https://other.example/")
    changed = other.render("password_changed", "ru", SAMPLES["password_changed"])
    assert "https://other.example/forgot-password" in changed.text
    # The data cannot replace it: links in security notices point at the real site.
    data = {**SAMPLES["password_changed"], "public_base_url": "https://evil.example"}
    assert "evil" not in other.render("password_changed", "ru", data).html


def test_unknown_template_and_locale(renderer):
    with pytest.raises(UnknownTemplate):
        renderer.render("no_such_email", "ru", {})
    with pytest.raises(UnknownTemplate):
        renderer.render("_layout", "ru", {})  # layouts are not emails
    with pytest.raises(ValueError, match="locale"):
        renderer.render("confirmation_code", "de", SAMPLES["confirmation_code"])


def test_an_email_missing_in_one_locale_refuses_to_load(tmp_path: Path):
    directory = tmp_path / "email"
    shutil.copytree(TEMPLATES_DIR, directory)
    (directory / "en" / "password_reset.html").unlink()
    with pytest.raises(RuntimeError, match=r"en/password_reset\.html"):
        TemplateRenderer(directory, public_base_url=BASE_URL)


@pytest.mark.parametrize(
    ("number", "word"),
    [
        (1, "минуту"),
        (2, "минуты"),
        (4, "минуты"),
        (5, "минут"),
        (11, "минут"),
        (12, "минут"),
        (14, "минут"),
        (21, "минуту"),
        (22, "минуты"),
        (30, "минут"),
        (101, "минуту"),
        (111, "минут"),
        (0, "минут"),
    ],
)
def test_russian_plurals(number, word):
    assert ru_plural(number, "минуту", "минуты", "минут") == word


def test_a_text_email_is_laid_out_exactly(renderer):
    """Block tags leave no blank lines or indentation of their own (trim_blocks,
    lstrip_blocks): the layout's `{% if %}` and `{% block %}` lines vanish."""
    email = renderer.render("confirmation_code", "en", SAMPLES["confirmation_code"])
    assert email.text == (
        "Hello, Анна!\n"
        "\n"
        "To confirm your email address, enter this code on the website:\n"
        "\n"
        "    482915\n"
        "\n"
        "The code is valid for 10 minutes. Do not share it with anyone: our staff will never "
        "ask you for a code.\n"
        "\n"
        "If you did not create an account at our shop, simply ignore this email.\n"
        "\n"
        "--\n"
        "This email was sent automatically; please do not reply to it.\n"
        f"{BASE_URL}\n"
    )


def test_the_stylesheet_is_inlined_and_no_style_tag_is_left(renderer):
    email = renderer.render("confirmation_code", "ru", SAMPLES["confirmation_code"])
    assert "<style" not in email.html  # mail clients drop <style>; the rules are inlined
    assert re.search(r'<p class="code" style="[^"]+"', email.html)


def test_a_template_s_own_styles_are_inlined_and_a_linked_sheet_is_ignored(tmp_path: Path):
    """A template's <style> is inlined and dropped like the shared stylesheet. A <link>
    slipped into one must not make every email fetch a URL while it is composed, nor
    reach the recipient. Block tags may be indented (lstrip_blocks)."""
    directory = templates_with(
        tmp_path,
        "linked",
        "{% set subject = 'Hi' %}A\n    {% if true %}\nB\n    {% endif %}\nC\n",
        '<html><head><link rel="stylesheet" href="http://127.0.0.1:9/x.css">'
        "<style>p.own { letter-spacing: 3px }</style></head>"
        '<body><p class="own">Hi</p></body></html>\n',
    )
    email = TemplateRenderer(directory, public_base_url=BASE_URL).render("linked", "en", {})
    assert email.text == "A\nB\nC\n"
    assert "<link" not in email.html and "<style" not in email.html
    assert "letter-spacing: 3px" in email.html
    assert re.search(r'<p class="own" style="[^"]+">Hi</p>', email.html)
