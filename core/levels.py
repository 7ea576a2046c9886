"""Alert levels, named once: the five Sigma levels, their order and their 1-5 numbers.

Every floor that validates, sorts or weighs a level imports it from here (API models,
detector settings, YARA results, the CLI's ``--min-level``), so a sixth level or a
new spelling is one edit.

Example::

    from core.levels import LEVELS, Level, level_number
    assert LEVELS[0] == "informational" and level_number("high") == 4
"""
from __future__ import annotations

from typing import Literal, get_args

__all__ = ["Level", "LEVELS", "LEVEL_NUMBERS", "DEFAULT_LEVEL", "level_number", "at_least"]

Level = Literal["informational", "low", "medium", "high", "critical"]
"""A detection or alert level (pydantic and FastAPI validate against it)."""

LEVELS: tuple[Level, ...] = get_args(Level)
"""The levels, lowest first."""

LEVEL_NUMBERS: dict[str, int] = {name: i + 1 for i, name in enumerate(LEVELS)}
"""Level -> 1 (informational) .. 5 (critical)."""

DEFAULT_LEVEL: Level = "medium"
"""What an unknown or missing level counts as."""


def level_number(level: str | None) -> int:
    """1-5 for ``level`` (case-insensitive); an unknown level counts as ``medium``."""
    return LEVEL_NUMBERS.get((level or "").lower(), LEVEL_NUMBERS[DEFAULT_LEVEL])


def at_least(level: str | None, minimum: str) -> bool:
    """Whether ``level`` is ``minimum`` or above (``at_least("high", "medium")``)."""
    return level_number(level) >= level_number(minimum)
