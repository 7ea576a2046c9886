"""The format registry: what each parser declares, and every routing table derived from it.

A parser declares, on its class, everything the rest of the package needs to reach it:

===================  =====================================================================
``name``             the format id (``format:`` in ``citysoc.yml``, ``RawRecord.format``)
``order``            its place in every sniffing chain below (lower is tried first)
``programs``         syslog program names (lower case) whose bodies it reads
``program_prefixes`` program-name prefixes, for daemons that append an instance to the tag
``body_sniff``       True: ``sniff(message)`` is asked about a syslog body no program claimed
``line_sniff``       True: ``sniff_line(line)`` is asked about a bare line (``format=auto``)
``json_claims``      True: ``claims(doc)`` is asked about a JSON object (line or syslog body)
``datasets``         Elastic dataset names a shipper sends its raw lines under (``system.auth``)
``log_paths``        ``log.file.path`` prefixes that mean this format, for shippers naming none
===================  =====================================================================

:func:`build` turns the list of parsers into a :class:`Routes` (program table, sniffing
chains, dataset and path tables); ``collectors.parsers`` builds it once from its
explicit list and :data:`ROUTES` holds it, so the syslog router and the shipped-document
reader (which the registry itself imports) read the same tables without an import cycle.
Adding a format is therefore one class with its declaration plus one line in that list.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Routes", "ROUTES", "build", "DECLARED"]

DECLARED = ("name", "order", "programs", "program_prefixes", "body_sniff", "line_sniff", "json_claims", "datasets",
            "log_paths")
"""The attributes of a parser's declaration (documented above)."""


@dataclass
class Routes:
    """Every table derived from the parsers' declarations."""

    parsers: dict[str, Any] = field(default_factory=dict)
    """Format id -> parser."""
    by_program: dict[str, Any] = field(default_factory=dict)
    """Syslog program name -> the app parser that reads its bodies."""
    by_prefix: tuple[tuple[str, Any], ...] = ()
    """(program-name prefix, parser), longest prefix first."""
    body_sniffers: tuple[Any, ...] = ()
    """Parsers asked, in order, about a syslog body that no program name routed."""
    line_sniffers: tuple[Any, ...] = ()
    """Parsers asked, in order, about a bare line of ``format=auto``."""
    json_claimers: tuple[Any, ...] = ()
    """Parsers asked, in order, about a JSON object (``format=auto`` line or syslog body)."""
    by_dataset: dict[str, str] = field(default_factory=dict)
    """Elastic dataset name -> format id."""
    by_path: tuple[tuple[str, str], ...] = ()
    """(``log.file.path`` prefix, format id), longest prefix first."""

    def load(self, other: Routes) -> None:
        """Take ``other``'s tables (the registry fills the shared :data:`ROUTES` in place)."""
        self.__dict__.update(other.__dict__)


def _order(p: Any) -> int:
    return int(getattr(p, "order", 1000))


def build(parsers: Iterable[Any]) -> Routes:
    """Derive every table from ``parsers``; ``ValueError`` names a clash (two owners of one key)."""
    plist = list(parsers)
    routes = Routes()
    errors: list[str] = []

    def claim(table: dict[str, Any], key: str, value: Any, what: str, owner: str) -> None:
        prev = table.get(key)
        if prev is not None and prev is not value:
            errors.append(f"{what} {key!r} is declared by both {_name(prev)} and {owner}")
        table[key] = value

    for p in plist:
        claim(routes.parsers, p.name, p, "format id", p.name)
    ordered = sorted(plist, key=_order)
    prefixes: dict[str, Any] = {}
    paths: dict[str, str] = {}
    for p in ordered:
        for prog in getattr(p, "programs", ()):
            claim(routes.by_program, prog, p, "syslog program", p.name)
        for prefix in getattr(p, "program_prefixes", ()):
            claim(prefixes, prefix, p, "program prefix", p.name)
        for ds in getattr(p, "datasets", ()):
            claim(routes.by_dataset, ds, p.name, "dataset", p.name)
        for path in getattr(p, "log_paths", ()):
            claim(paths, path, p.name, "log path", p.name)
    if errors:
        raise ValueError("parser registry: " + "; ".join(errors))
    routes.by_prefix = tuple(sorted(prefixes.items(), key=lambda kv: -len(kv[0])))
    routes.by_path = tuple(sorted(paths.items(), key=lambda kv: -len(kv[0])))
    routes.body_sniffers = tuple(p for p in ordered if getattr(p, "body_sniff", False))
    routes.line_sniffers = tuple(p for p in ordered if getattr(p, "line_sniff", False))
    routes.json_claimers = tuple(p for p in ordered if getattr(p, "json_claims", False))
    return routes


def _name(value: Any) -> str:
    return value if isinstance(value, str) else getattr(value, "name", repr(value))


ROUTES = Routes()
"""The live tables, filled by ``collectors.parsers`` at import."""
