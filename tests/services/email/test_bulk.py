"""Staff content for bulk email: compiled in the sandbox at once, refused with the part, the
line and the reason, and compiled once per newsletter where emails are composed."""

import uuid
from typing import ClassVar

import pytest
from jinja2 import TemplateSyntaxError

from app.services.email import composer
from app.services.email.bulk import (
    MERGE_FIELDS,
    BulkSource,
    ContentError,
    _reason,
    compile_content,
)


def refusal(**parts: str) -> str:
    content = {"subject": "Тема", "html": "<p>Текст</p>", "text": "Текст", **parts}
    with pytest.raises(ContentError) as refused:
        compile_content(**content)
    return str(refused.value)


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ({"html": "<p>ok</p>\n<p>{{ name</p>"}, "html: line 2: unexpected '/'"),
        ({"text": "Привет,\n\n{{ nmae }}"}, "text: line 3: 'nmae' is undefined"),
        (
            {"subject": "{{ name.__class__ }}"},
            "subject: line 1: access to attribute '__class__' of 'str' object is unsafe.",
        ),
        ({"subject": "{{ '' }}  "}, "subject: the subject is empty"),
        # Errors of the expressions themselves are the content's errors too (never a 500).
        ({"html": "<p>\n{{ 1 / 0 }}</p>"}, "html: line 2: ZeroDivisionError: division by zero"),
        (
            {"text": "{{ name + 1 }}"},
            'text: line 1: TypeError: can only concatenate str (not "int") to str',
        ),
        (  # the line that failed, inside the macro, not the line that called it
            {"html": "{% macro f() %}\n{{ 1 / 0 }}{% endmacro %}\n\n{{ f() }}"},
            "html: line 2: ZeroDivisionError: division by zero",
        ),
        (
            {"text": "x\n{% for i in range(10**9) %}{% endfor %}"},
            "text: line 2: OverflowError: Range too big. The sandbox blocks ranges larger "
            "than MAX_RANGE (100000).",
        ),
    ],
)
def test_a_refusal_names_the_part_the_line_and_the_reason(parts, expected):
    assert refusal(**parts) == expected


def test_a_reason_is_cut_at_200_characters():
    long_name = "a" * 250
    assert (
        refusal(text="{{ " + long_name + " }}")
        == "text: line 1: " + (f"'{long_name}' is undefined")[:200]
    )


def test_an_error_from_no_line_of_the_template_says_only_what_it_is():
    assert _reason(ValueError("no  line\nhere")) == "ValueError: no line here"
    assert _reason(TemplateSyntaxError("", lineno=4)) == "line 4: TemplateSyntaxError"


def test_merge_fields_are_escaped_in_html_only_and_nothing_else_is_defined():
    content = compile_content(
        subject="{{ name }}: новости", html="<p>{{ name }}</p>", text="{{ name }}, здравствуйте"
    )
    fields = {**MERGE_FIELDS, "name": "<b>Анна & Co</b>", "extra": "unused"}
    rendered = content.render(fields)
    assert rendered["newsletter_html"] == "<p>&lt;b&gt;Анна &amp; Co&lt;/b&gt;</p>"
    assert rendered["newsletter_text"] == "<b>Анна & Co</b>, здравствуйте"
    assert rendered["newsletter_subject"] == "<b>Анна & Co</b>: новости"
    assert rendered["unsubscribe_url"] == MERGE_FIELDS["unsubscribe_url"]


class CountingSource(BulkSource):
    compiled: ClassVar[list[str]] = []

    def compile(self):
        CountingSource.compiled.append(self.subject)
        return super().compile()


def test_a_newsletter_is_compiled_once_and_the_cache_keeps_the_newest(monkeypatch):
    """The composer compiles a newsletter's content once per process, not per email; the
    cache holds _CACHED_CONTENTS newsletters and forgets the oldest first."""
    monkeypatch.setattr(CountingSource, "compiled", [])
    cache = composer._ContentCache()
    ids = [uuid.uuid4() for _ in range(composer._CACHED_CONTENTS + 1)]
    sources = {
        i: CountingSource(subject=f"n{n}", html="<p>x</p>", text="x") for n, i in enumerate(ids)
    }

    first = cache.get(ids[0], sources[ids[0]])
    assert cache.get(ids[0], sources[ids[0]]) is first
    assert CountingSource.compiled == ["n0"]
    for newsletter_id in ids[1:]:  # one more than the cache holds
        cache.get(newsletter_id, sources[newsletter_id])
        cache.get(newsletter_id, sources[newsletter_id])
    assert len(CountingSource.compiled) == len(ids)  # each compiled once
    cache.get(ids[-1], sources[ids[-1]])  # the newest stayed
    cache.get(ids[1], sources[ids[1]])  # so did the oldest but one
    assert len(CountingSource.compiled) == len(ids)
    cache.get(ids[0], sources[ids[0]])  # the oldest went
    assert CountingSource.compiled[-1] == "n0"
