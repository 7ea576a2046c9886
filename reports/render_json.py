"""JSON: the full report data as collected, plus the language it was asked in.

The body carries the audit head of generation (``audit.head``); the file's own hash
lives in its sidecar manifest (see :mod:`reports.manifest`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

__all__ = ["render_json"]


def render_json(data: dict[str, Any], lang: str, out: Path) -> None:
    out.write_bytes(orjson.dumps({**data, "lang": lang}, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
