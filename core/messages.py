"""Messages: text the system writes for people (dry-run descriptions, approval waits, run
reasons, detector titles), kept as a catalog key plus parameters so each reader gets it in
their language.

A :class:`Message` *is* its English text (a ``str``), so every place that prints, logs,
audits or compares it keeps working; it also carries ``key`` and ``params``. Stores keep
:meth:`Message.to_json` beside the text, and the console renders the key from its catalog
(``dashboards/i18n/<lang>.json``, the one place both languages live). The English text is
rendered from the same catalog, so there is one wording per language and no f-string
copy to drift.

Parameters are values shown as they are (addresses, names, numbers) or nested messages.
Log content reaches the console only as a parameter, and the console inserts parameters
as text, never as markup.

Example::

    >>> m = Message("msg.nft.would_add", ip="10.20.3.250", table="citysoc", set="isolated4", ttl="1 h")
    >>> str(m).startswith("would add 10.20.3.250")
    True
    >>> render(m.to_json(), "vi").startswith("sẽ thêm 10.20.3.250")
    True
"""
from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["Message", "render", "message_json", "from_json", "CATALOG_DIR"]

CATALOG_DIR = Path(__file__).resolve().parents[1] / "dashboards" / "i18n"
"""Where the catalogs live (data files, read here so every floor can render a message)."""

_PLACEHOLDER = re.compile(r"\{([a-z_0-9]+)\}")


@cache
def _catalog(lang: str) -> dict[str, str]:
    return json.loads((CATALOG_DIR / f"{lang}.json").read_text(encoding="utf-8"))


def _param_text(v: Any, lang: str) -> str:
    if isinstance(v, dict) and "key" in v:
        return render(v, lang)
    if isinstance(v, Message):
        return render(v.to_json(), lang)
    if isinstance(v, (list, tuple)):
        return ", ".join(_param_text(x, lang) for x in v)
    return str(v)


def render(msg: dict[str, Any], lang: str, fallback: str = "") -> str:
    """The text of a stored message (``{"key", "params"}``) in ``lang``; ``fallback`` when
    the catalog has no such key (a message written by a newer version)."""
    template = _catalog(lang).get(str(msg.get("key", "")))
    if template is None:
        return fallback or str(msg.get("key", ""))
    params = msg.get("params") or {}
    return _PLACEHOLDER.sub(lambda m: _param_text(params[m.group(1)], lang) if m.group(1) in params else m.group(0),
                            template)


class Message(str):
    """English text that also carries its catalog key and parameters (see the module doc)."""

    key: str
    params: dict[str, Any]

    def __new__(cls, key: str, /, **params: Any) -> Message:
        if key not in _catalog("en"):
            raise KeyError(f"message key {key!r} is not in {CATALOG_DIR / 'en.json'}")
        obj = super().__new__(cls, render({"key": key, "params": params}, "en"))
        obj.key = key
        obj.params = params
        return obj

    def to_json(self) -> dict[str, Any]:
        """``{"key": ..., "params": {...}}`` with nested messages as dicts too."""
        return {"key": self.key, "params": {k: (v.to_json() if isinstance(v, Message) else v)
                                            for k, v in self.params.items()}}

    def in_lang(self, lang: str) -> str:
        return render(self.to_json(), lang, str(self))

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (worker processes) as the same message
        return (_rebuild, (self.key, self.params))


def _rebuild(key: str, params: dict[str, Any]) -> Message:
    return Message(key, **params)


def message_json(value: Any) -> dict[str, Any] | None:
    """The stored form of ``value`` when it is a :class:`Message`, else None (plain text)."""
    return value.to_json() if isinstance(value, Message) else None


def from_json(text: str, data: dict[str, Any] | str | None) -> str:
    """Back from storage: a :class:`Message` when ``data`` holds one this catalog knows, else ``text``."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return text
    if not isinstance(data, dict) or data.get("key") not in _catalog("en"):
        return text
    params = {k: (from_json("", v) if isinstance(v, dict) and "key" in v else v)
              for k, v in (data.get("params") or {}).items()}
    try:
        return Message(str(data["key"]), **params)
    except (KeyError, TypeError):
        return text
