"""Nested-dict helpers every floor needs, written once.

Example::

    from core.mappings import deep_merge
    cfg = deep_merge({"syslog": {"port": 514, "tls": {}}}, {"syslog": {"port": 5514}})
    assert cfg == {"syslog": {"port": 5514, "tls": {}}}
"""
from __future__ import annotations

from typing import Any

__all__ = ["deep_merge"]


def deep_merge(dst: dict[str, Any], src: dict[str, Any]) -> dict[str, Any]:
    """Merge ``src`` into ``dst`` in place and return ``dst``: a key whose two values are
    both dicts merges recursively, any other value of ``src`` replaces ``dst``'s.

    In place because the parsers call it per event on a dict they just built; merge into
    a copy (``deep_merge(copy.deepcopy(base), over)``) to keep ``base``.
    """
    for k, v in src.items():
        if isinstance(v, dict):
            cur = dst.get(k)
            if isinstance(cur, dict):
                deep_merge(cur, v)
                continue
        dst[k] = v
    return dst
