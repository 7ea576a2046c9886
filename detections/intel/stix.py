"""STIX 2.1 bundles: ``indicator`` objects (``pattern_type: stix``) and bare cyber
observables (``ipv4-addr``, ``domain-name``, ``url``, ``file`` ...), also those nested in
STIX 2.0-style ``observed-data`` objects.

Revoked and expired (``valid_until`` in the past) indicators are left out; each
indicator whose pattern does not parse, or cannot be an IOC, becomes a
:class:`FeedProblem` naming the file and the indicator id.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any

from detections.intel.feedload import FeedError, FeedLoad, make_indicator, parse_expiry
from detections.intel.indicators import FeedProblem, IocValueError
from detections.intel.stix_pattern import StixPatternError, UnsupportedPattern, pattern_iocs

__all__ = ["load_stix_bundle"]

_SCO_KINDS = {"ipv4-addr": "ip", "ipv6-addr": "ip", "domain-name": "domain", "url": "url"}
_HASH_KEYS = {"md5": "md5", "sha-1": "sha1", "sha1": "sha1", "sha-256": "sha256", "sha256": "sha256"}
_NON_IOC_TYPES = {"identity", "marking-definition", "relationship", "malware", "threat-actor", "campaign",
                  "attack-pattern", "report", "note", "sighting", "intrusion-set", "tool", "vulnerability",
                  "course-of-action", "location", "grouping", "opinion", "infrastructure", "extension-definition",
                  "language-content", "malware-analysis", "incident"}


def load_stix_bundle(doc: Any, *, name: str, origin: str, now: _dt.datetime | None = None) -> FeedLoad:
    """Indicators from a parsed STIX bundle (``{"type": "bundle", "objects": [...]}``)."""
    if not isinstance(doc, dict) or doc.get("type") != "bundle":
        raise FeedError(f"{origin}: not a STIX bundle (top-level object must have \"type\": \"bundle\")")
    objects = doc.get("objects", [])
    if not isinstance(objects, list):
        raise FeedError(f"{origin}: STIX bundle \"objects\" must be a list")
    now = now or _dt.datetime.now(_dt.timezone.utc)
    load = FeedLoad(name, "stix", origin)
    identities = {o.get("id"): o.get("name", "") for o in objects if isinstance(o, dict) and o.get("type") == "identity"}
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict) or "type" not in obj:
            load.problems.append(FeedProblem(f"{origin}: objects[{i}]", "not a STIX object (no \"type\")"))
            continue
        typ = obj["type"]
        where = f"{origin}: {obj.get('id', f'objects[{i}]')}"
        if typ == "indicator":
            _indicator(obj, where, load, identities, now)
        elif typ in _SCO_KINDS or typ == "file":
            _sco(obj, where, load, source=identities.get(obj.get("created_by_ref"), ""))
        elif typ == "observed-data" and isinstance(obj.get("objects"), dict):
            src = identities.get(obj.get("created_by_ref"), "")
            for key, sco in obj["objects"].items():
                if isinstance(sco, dict):
                    _sco(sco, f"{where}.objects.{key}", load, source=src)
        elif typ in _NON_IOC_TYPES or typ == "observed-data":
            continue
        else:
            load.ignore(typ)
    return load


def _confidence(obj: dict, where: str, load: FeedLoad) -> int | None:
    c = obj.get("confidence")
    if c is None:
        return None
    if isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 100:
        return c
    load.problems.append(FeedProblem(where, f"confidence {c!r} is not an integer 0-100; left unset", "warning"))
    return None


def _indicator(obj: dict, where: str, load: FeedLoad, identities: dict, now: _dt.datetime) -> None:
    if obj.get("revoked") is True:
        return
    ptype = obj.get("pattern_type", "stix")
    if ptype != "stix":
        load.problems.append(FeedProblem(where, f"pattern_type {ptype!r} is not matched by the intel engine "
                                                "(only 'stix'); use the YARA/Sigma engines for those", "warning"))
        return
    pattern = obj.get("pattern")
    if not isinstance(pattern, str):
        load.problems.append(FeedProblem(where, "indicator without a \"pattern\" string"))
        return
    try:
        expires = parse_expiry(obj.get("valid_until"))
    except IocValueError as exc:
        load.problems.append(FeedProblem(where, f"valid_until: {exc}"))
        return
    if expires is not None and expires <= now:
        load.skipped_expired += 1
        return
    try:
        iocs = pattern_iocs(pattern)
    except StixPatternError as exc:
        pointer = f"\n    {pattern}\n    {' ' * exc.position}^"
        load.problems.append(FeedProblem(where, f"{exc}{pointer}"))
        return
    except UnsupportedPattern as exc:
        load.problems.append(FeedProblem(where, f"unsupported pattern: {exc}", "warning"))
        return
    conf = _confidence(obj, where, load)
    labels = tuple(str(x) for x in obj.get("labels", []) or []) + tuple(
        str(x) for x in obj.get("indicator_types", []) or [])
    desc = obj.get("description") or obj.get("name") or ""
    source = identities.get(obj.get("created_by_ref"), "")
    for kind, raw in iocs:
        kind = kind.split(":", 1)[1] if kind.startswith("hash:") else kind
        try:
            load.indicators.append(make_indicator(kind, raw, feed=load.name, source=source, confidence=conf,
                                                  expires=expires, id=obj.get("id", ""), description=str(desc),
                                                  labels=labels))
        except IocValueError as exc:
            load.problems.append(FeedProblem(where, str(exc)))


def _sco(obj: dict, where: str, load: FeedLoad, *, source: str) -> None:
    typ = obj.get("type")
    oid = obj.get("id", "")
    if typ == "file":
        hashes = obj.get("hashes") or {}
        found = False
        for key, val in hashes.items():
            kind = _HASH_KEYS.get(str(key).lower())
            if kind is None:
                continue
            found = True
            try:
                load.indicators.append(make_indicator(kind, val, feed=load.name, source=source, id=oid,
                                                      description=str(obj.get("name", ""))))
            except IocValueError as exc:
                load.problems.append(FeedProblem(where, str(exc)))
        if not found:
            load.ignore("file without md5/sha1/sha256")
        return
    kind = _SCO_KINDS.get(str(typ))
    if kind is None:
        load.ignore(str(typ))
        return
    try:
        load.indicators.append(make_indicator(kind, obj.get("value", ""), feed=load.name, source=source, id=oid))
    except IocValueError as exc:
        load.problems.append(FeedProblem(where, str(exc)))
