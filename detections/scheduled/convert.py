"""Sigma rule -> Lucene queries our stores run (SQLite through our parser, and Elasticsearch).

Why Lucene for both stores: :class:`core.protocols.EventStore` speaks one query language,
our Lucene dialect (``storage.query``), on SQLite and on Elasticsearch alike. Converting
with pySigma's ``LuceneBackend`` therefore gives *one* query per rule that the store
layer already knows how to run, bound to the time range and paged, on either store;
``detections`` never needs SQL or ES|QL of its own (and must not import ``storage``).

Field names are mapped to where our ECS events keep them with the same tables the
streaming engine uses (:mod:`detections.sigma.fields`), as a pySigma
``FieldFunctionTransformation``: Windows event-data fields become
``winlog.event_data.<Field>``, system fields ``winlog.*``, generic names their ECS
field. The rule's ``logsource`` becomes a scope clause ANDed in front (channel and event
id for Windows, ``event.category`` for other categories), because pySigma leaves that to
the pipeline. A rule can convert into several *branches*: process creation runs once
for Sysmon event 1 and once for Security 4688, whose fields have other names
(``Image`` is ``NewProcessName`` there); the hits of all branches are one result.

What cannot be scheduled is a :class:`ConversionFailure` with the reason, never
dropped: correlation rules (they run in the streaming engine), unfilled placeholders,
field names our query language refuses (spaces, dashes). Regular expressions convert
(``field:/re/``) but our parser refuses them; the runner reports that per rule when it
validates queries against the store.

Conversion **mutates** pySigma rule objects, so each branch parses the YAML again.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from detections.sigma.fields import (
    CATEGORY_FIELDS,
    GENERIC_FIELDS,
    WINDOWS_EVENT_ALIASES,
    WINDOWS_SYSTEM_FIELDS,
)
from detections.sigma.logsources import _SERVICE_CHANNELS, CATEGORY_EVENTS, CATEGORY_ECS

__all__ = ["Branch", "ScheduledQuery", "ConversionFailure", "convert_file", "convert_files"]

_FIELD_OK = re.compile(r"^[A-Za-z0-9_@.]+$")
_TIME_PARTS = frozenset({"minute", "hour", "day", "week", "month", "year"})
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Channel names as Windows writes them (our logsource tables keep them lower-cased).
_CASED_CHANNELS: dict[str, str] = {c.lower(): c for chans in _SERVICE_CHANNELS.values() for c in chans}
for _c in ("Security", "Windows PowerShell", "Microsoft-Windows-Sysmon/Operational",
           "Microsoft-Windows-PowerShell/Operational", "PowerShellCore/Operational"):
    _CASED_CHANNELS[_c.lower()] = _c


@dataclass(frozen=True, slots=True)
class Branch:
    """One query of a rule: ``scope`` (from the logsource) AND ``condition``."""

    scope: str
    condition: str

    @property
    def query(self) -> str:
        if not self.scope:
            return self.condition
        return f"({self.scope}) AND ({self.condition})"


@dataclass(slots=True)
class ScheduledQuery:
    """A Sigma rule converted for scheduled runs."""

    id: str
    title: str
    level: str
    path: str
    branches: list[Branch]
    tags: list[str] = field(default_factory=list)
    description: str = ""
    case_variants: bool = True
    """False: values as written (case-sensitive), e.g. the expanded query was too large."""


@dataclass(slots=True)
class ConversionFailure:
    """A rule (or file) that cannot be scheduled, and why."""

    path: str
    reason: str
    rule_id: str | None = None
    title: str | None = None


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _windows_mapper(aliases: dict[str, str]) -> Any:
    def mapping(name: str | None) -> str | None:
        if name is None:
            return None
        system = WINDOWS_SYSTEM_FIELDS.get(name)
        if system:
            return system
        if "." in name or name == "@timestamp":  # an ECS path written into a Windows rule
            return name
        return "winlog.event_data." + aliases.get(name, name)

    return mapping


def _generic_mapper(category: str | None) -> Any:
    table = {**GENERIC_FIELDS, **CATEGORY_FIELDS.get(category or "", {})}

    def mapping(name: str | None) -> str | None:
        if name is None:
            return None
        return table.get(name, name)

    return mapping


def _plans(logsource: dict[str, Any]) -> list[tuple[str, Any]]:
    """(scope, field mapper) per branch for a logsource."""
    product = str(logsource.get("product") or "").lower() or None
    category = str(logsource.get("category") or "").lower() or None
    service = str(logsource.get("service") or "").lower() or None
    windows = product == "windows" or (product is None and category is None and service in _SERVICE_CHANNELS)
    if windows:
        scopes: list[tuple[str, Any]] = []
        if category and category in CATEGORY_EVENTS:
            for channel, ids in CATEGORY_EVENTS[category]:
                cased = _CASED_CHANNELS.get(channel, channel)
                id_part = " OR ".join(sorted(ids, key=int))
                scope = f"winlog.channel:{_quote(cased)} AND winlog.event_id:({id_part})"
                aliases = {}
                for (chan, eid), table in WINDOWS_EVENT_ALIASES.items():
                    if chan == channel and eid in ids:
                        aliases = table
                scopes.append((scope, _windows_mapper(aliases)))
            return scopes
        if service and service in _SERVICE_CHANNELS:
            chans = " OR ".join(_quote(_CASED_CHANNELS.get(c.lower(), c)) for c in _SERVICE_CHANNELS[service])
            return [(f"winlog.channel:({chans})", _windows_mapper({}))]
        return [("_exists_:winlog.channel", _windows_mapper({}))]
    scope = ""
    cats = CATEGORY_ECS.get(category or "")
    if cats:
        scope = "event.category:(" + " OR ".join(sorted(cats)) + ")"
    return [(scope, _generic_mapper(category))]


def _case_variants(value: Any) -> list[Any] | None:
    """``*telnet*`` -> [``*telnet*``, ``*TELNET*``, ``*Telnet*``]: the spellings devices
    use most, since the store compares keywords case-sensitively and Sigma does not.
    ``|cased`` values are never expanded."""
    from sigma.types import SigmaCasedString, SigmaString

    if not isinstance(value, SigmaString) or isinstance(value, SigmaCasedString):
        return None
    text_parts = [p for p in value.s if isinstance(p, str)]
    if not any(any(c.isalpha() for c in p) for p in text_parts):
        return None

    def mapped(fn: Any) -> Any:
        out = copy.deepcopy(value)
        out.s = type(value.s)(fn(p) if isinstance(p, str) else p for p in value.s)
        return out

    first = next(i for i, p in enumerate(value.s) if isinstance(p, str) and any(c.isalpha() for c in p))

    variants = [value, mapped(str.lower), mapped(str.upper)]
    cap = copy.deepcopy(value)
    parts = list(cap.s)
    low = parts[first].lower()
    k = next(j for j, c in enumerate(low) if c.isalpha())
    parts[first] = low[:k] + low[k].upper() + low[k + 1:]
    cap.s = type(value.s)(p.lower() if isinstance(p, str) and j != first else p for j, p in enumerate(parts))
    variants.append(cap)
    seen: set[str] = set()
    out = []
    for v in variants:
        key = repr(tuple(v.s))
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def _case_transformation() -> Any:
    from sigma.conditions import ConditionAND
    from sigma.processing.transformations.base import ValueTransformation
    from sigma.rule import SigmaDetectionItem
    from sigma.types import SigmaString

    @dataclass
    class CaseVariants(ValueTransformation):
        """Expand string values into case variants (OR-linked items only: in a
        ``|all`` item the variants would all be required)."""

        def __post_init__(self) -> None:  # only strings are expanded (the base reads type hints)
            self.value_types = (SigmaString,)

        def apply_detection_item(self, detection_item: SigmaDetectionItem) -> Any:
            if detection_item.value_linking is ConditionAND:
                return None
            return super().apply_detection_item(detection_item)

        def apply_value(self, field: str | None, val: Any) -> Any:
            if field is None:  # keywords are free text: the full-text index ignores case already
                return None
            return _case_variants(val)

    return CaseVariants()


def _backend(mapper: Any, case_variants: bool) -> Any:
    from sigma.backends.elasticsearch import LuceneBackend
    from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
    from sigma.processing.transformations import FieldFunctionTransformation

    items = [ProcessingItem(identifier="citysoc_ecs", transformation=FieldFunctionTransformation({}, mapper))]
    if case_variants:
        items.append(ProcessingItem(identifier="citysoc_case_variants", transformation=_case_transformation()))
    pipeline = ProcessingPipeline(name="citysoc ECS fields", priority=20, items=items)
    return LuceneBackend(processing_pipeline=pipeline)


def _convert_doc(text: str, doc: dict[str, Any], path: str, case_variants: bool) -> ScheduledQuery | ConversionFailure:
    from sigma.collection import SigmaCollection
    from sigma.exceptions import SigmaError

    rid = str(doc.get("id") or "") or None
    title = str(doc.get("title") or "") or None
    if "correlation" in doc:
        return ConversionFailure(path, "correlation rule: runs in the streaming engine, not as a scheduled query", rid, title)
    plans = _plans(doc.get("logsource") or {})
    for key in _field_keys(doc.get("detection") or {}):
        name, *mods = key.split("|")
        if name and not _FIELD_OK.match(name):
            return ConversionFailure(path, f"field name {name!r} is not usable in our query language", rid, title)
        timeparts = _TIME_PARTS.intersection(m.lower() for m in mods)
        if timeparts:
            # pySigma's Lucene backend writes the bare number as the value: a wrong query.
            return ConversionFailure(path, f"{key}: time-part modifier |{min(timeparts)} has no Lucene equivalent",
                                     rid, title)
    branches: list[Branch] = []
    meta: Any = None
    # Like the streaming engine, an unknown Windows service or category fails open: the
    # rule's query runs over every Windows event rather than never.
    for scope, mapper in plans:
        try:
            coll = SigmaCollection.from_yaml(text)  # conversion mutates rules: parse per branch
            rule = coll.rules[0]
            out = _backend(mapper, case_variants).convert_rule(rule)
        except SigmaError as exc:
            return ConversionFailure(path, f"pySigma: {exc}", rid, title)
        except Exception as exc:  # a backend bug must cost one rule, not the scheduler
            return ConversionFailure(path, f"conversion failed: {type(exc).__name__}: {exc}", rid, title)
        if len(out) != 1:
            return ConversionFailure(path, f"converted into {len(out)} queries, expected one", rid, title)
        branches.append(Branch(scope, out[0]))
        meta = rule
    level = str(getattr(meta.level, "name", meta.level or "medium")).lower() if meta is not None else "medium"
    return ScheduledQuery(
        id=str(meta.id or rid or path),
        title=str(meta.title or title or path),
        level=level,
        path=path,
        branches=branches,
        tags=[str(t) for t in (meta.tags or [])],
        description=str(meta.description or ""),
        case_variants=case_variants,
    )


def _field_keys(detection: dict[str, Any]) -> Iterable[str]:
    """Every ``field|modifier`` key of a detection section."""

    def walk(node: Any) -> Iterable[str]:
        if isinstance(node, dict):
            for key in node:
                yield str(key)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    for key, value in detection.items():
        if key in ("condition", "timeframe"):
            continue
        yield from (n for n in walk(value) if n)


def convert_file(path: str | Path, *, case_variants: bool = True) -> list[ScheduledQuery | ConversionFailure]:
    """Every rule document of one Sigma file, converted or explained.

    ``case_variants`` expands each string value into its written, lower, upper and
    capitalised spellings (see :func:`_case_variants`): closer to Sigma's
    case-insensitive matching on stores that compare keywords case-sensitively, at the
    cost of longer queries."""
    p = str(path)
    try:
        raw = Path(path).read_text(encoding="utf-8")
        docs = [d for d in yaml.load_all(raw, Loader=_YAML_LOADER) if d is not None]
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return [ConversionFailure(p, f"cannot read rule file: {exc}")]
    texts = _split_documents(raw) if len(docs) > 1 else [raw]
    if len(texts) != len(docs):
        return [ConversionFailure(p, "cannot split the multi-document file")]
    out: list[ScheduledQuery | ConversionFailure] = []
    for text, doc in zip(texts, docs):
        if not isinstance(doc, dict):
            continue
        if doc.get("action"):
            out.append(ConversionFailure(p, f"Sigma collection action {doc.get('action')!r} is not supported"))
            continue
        out.append(_convert_doc(text, doc, p, case_variants))
    return out


def _split_documents(raw: str) -> list[str]:
    parts = re.split(r"^---\s*$", raw, flags=re.M)
    return [t for t in parts if yaml.load(t, Loader=_YAML_LOADER) is not None]


def convert_files(paths: Iterable[str | Path], *, case_variants: bool = True,
                  ) -> tuple[list[ScheduledQuery], list[ConversionFailure]]:
    """Convert every ``.yml``/``.yaml`` rule under ``paths`` (files or folders), skipping
    rule test files (``X.tests.yml``)."""
    from detections.sigma.loader import rule_files

    rules: list[ScheduledQuery] = []
    failures: list[ConversionFailure] = []
    for f in rule_files(list(paths)):
        for r in convert_file(f, case_variants=case_variants):
            (rules if isinstance(r, ScheduledQuery) else failures).append(r)
    return rules, failures
