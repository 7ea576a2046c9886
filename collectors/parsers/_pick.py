"""Small helpers for reading loosely-shaped JSON documents."""
from __future__ import annotations

from typing import Any

__all__ = ["pick", "pick_str"]


def pick(doc: dict[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present in ``doc`` with a non-empty value, else ``None``."""
    for key in keys:
        value = doc.get(key)
        if value not in (None, "", [], {}):
            return value
    return None


def pick_str(doc: dict[str, Any], *keys: str) -> str | None:
    value = pick(doc, *keys)
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)
