"""Which language a person reading an error wants: Russian first, English when the
request's Accept-Language prefers it."""

from typing import Literal

Language = Literal["ru", "en"]
DEFAULT_LANGUAGE: Language = "ru"
# Longer headers are cut, not parsed: no browser sends more than a few dozen ranges.
_MAX_HEADER = 256


def preferred_language(accept_language: str | None) -> Language:
    """`en` when English outranks Russian in the header (by q-value, then by order);
    `ru` otherwise, including when neither is named."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    best: tuple[float, int, Language] | None = None
    for position, item in enumerate(accept_language[:_MAX_HEADER].split(",")):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-", 1)[0]
        if primary not in ("ru", "en"):
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        language: Language = "ru" if primary == "ru" else "en"
        candidate = (quality, -position, language)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return best[2] if best else DEFAULT_LANGUAGE
