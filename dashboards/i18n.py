"""Translations for the console: one flat JSON catalog per language (``i18n/<lang>.json``).

Every label in templates goes through ``t("key")`` and every label JS draws through
``T("key")`` (the catalog is handed to the page as a JSON data block); a test proves
both catalogs hold the same keys and every key used exists. A missing key renders as
the key itself, so a gap is visible rather than blank.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from starlette.requests import Request

__all__ = ["LANGUAGES", "LANG_COOKIE", "catalog", "pick_language", "Translator"]

LANGUAGES: tuple[str, ...] = ("vi", "en")
LANG_COOKIE = "citysoc_lang"
_DIR = Path(__file__).with_name("i18n")


@cache
def catalog(lang: str) -> dict[str, str]:
    """The catalog of ``lang`` (read once per process)."""
    if lang not in LANGUAGES:
        raise KeyError(f"no catalog for language {lang!r}; have {', '.join(LANGUAGES)}")
    return json.loads((_DIR / f"{lang}.json").read_text(encoding="utf-8"))


def pick_language(request: Request, default: str) -> str:
    """The person's choice (cookie set by the language switch), else the site default."""
    chosen = request.cookies.get(LANG_COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    return default if default in LANGUAGES else LANGUAGES[0]


class Translator:
    """``t("nav.alerts")`` -> the label in this request's language."""

    def __init__(self, lang: str):
        self.lang = lang
        self.messages = catalog(lang)

    def __call__(self, key: str) -> str:
        return self.messages.get(key, key)
