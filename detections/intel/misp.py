"""MISP feeds: single event JSON files (``{"Event": {...}}``, also the API's
``{"response": [...]}`` and plain lists), and the feed layout MISP publishes
(``manifest.json`` naming events, one ``<uuid>.json`` per event).

Only attributes flagged for detection (``to_ids``, true unless the feed says otherwise)
become indicators; context attributes (``link``, ``comment``, ``text`` ...) are
counted as ignored. The event's ``threat_level_id`` gives the confidence.
"""
from __future__ import annotations

import re
from typing import Any

from detections.intel.feedload import FeedError, FeedLoad, make_indicator
from detections.intel.indicators import FeedProblem, IocValueError

__all__ = ["ATTRIBUTE_TYPES", "load_misp_event_doc", "misp_manifest_events"]

ATTRIBUTE_TYPES: dict[str, tuple[str, ...]] = {
    # MISP attribute type -> what each '|'-separated part is (None-like "" = not used)
    "ip-src": ("ip",), "ip-dst": ("ip",),
    "ip-src|port": ("ip", ""), "ip-dst|port": ("ip", ""),
    "domain": ("domain",), "hostname": ("domain",),
    "domain|ip": ("domain", "ip"), "hostname|port": ("domain", ""),
    "url": ("url",),
    "md5": ("md5",), "sha1": ("sha1",), "sha256": ("sha256",),
    "filename|md5": ("", "md5"), "filename|sha1": ("", "sha1"), "filename|sha256": ("", "sha256"),
    "malware-sample": ("", "md5"),
}
"""Attribute types we match, as data: add a row to support another."""

_UUID = re.compile(r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}")

# threat_level_id: 1 high, 2 medium, 3 low, 4 undefined
_THREAT_CONFIDENCE = {"1": 90, "2": 60, "3": 30, "4": None}


def _events(doc: Any, origin: str) -> list[dict]:
    if isinstance(doc, dict) and isinstance(doc.get("Event"), dict):
        return [doc["Event"]]
    if isinstance(doc, dict) and isinstance(doc.get("response"), list):
        return _events(doc["response"], origin)
    if isinstance(doc, list) and all(isinstance(x, dict) and isinstance(x.get("Event"), dict) for x in doc):
        return [x["Event"] for x in doc]
    raise FeedError(f"{origin}: not a MISP event (expected {{\"Event\": {{...}}}} or a list of them)")


def _truthy(v: Any) -> bool:
    return v in (True, 1, "1", "true", "True")


def load_misp_event_doc(doc: Any, load: FeedLoad, origin: str) -> None:
    """Add the indicators of every event in ``doc`` to ``load``."""
    for ev in _events(doc, origin):
        uuid = ev.get("uuid", "")
        org = ev.get("Orgc") or ev.get("Org") or {}
        source = org.get("name", "") if isinstance(org, dict) else ""
        confidence = _THREAT_CONFIDENCE.get(str(ev.get("threat_level_id", "4")))
        info = str(ev.get("info", ""))
        tags = tuple(t.get("name", "") for t in ev.get("Tag", []) or [] if isinstance(t, dict))
        attrs: list[tuple[str, dict]] = []
        for i, a in enumerate(ev.get("Attribute", []) or []):
            attrs.append((f"Attribute[{i}]", a))
        for j, obj in enumerate(ev.get("Object", []) or []):
            for i, a in enumerate((obj or {}).get("Attribute", []) or []):
                attrs.append((f"Object[{j}].Attribute[{i}]", a))
        for path, a in attrs:
            where = f"{origin}: event {uuid or '?'} {path}"
            if not isinstance(a, dict) or "type" not in a or "value" not in a:
                load.problems.append(FeedProblem(where, "attribute without \"type\" and \"value\""))
                continue
            if _truthy(a.get("deleted")) or not _truthy(a.get("to_ids", True)):
                continue
            parts_kind = ATTRIBUTE_TYPES.get(a["type"])
            if parts_kind is None:
                load.ignore(a["type"])
                continue
            values = str(a["value"]).split("|") if len(parts_kind) > 1 else [str(a["value"])]
            if len(values) != len(parts_kind):
                load.problems.append(FeedProblem(where, f"{a['type']} value {a['value']!r} should have "
                                                        f"{len(parts_kind)} '|'-separated parts"))
                continue
            desc = info if not a.get("comment") else f"{info}: {a['comment']}"
            if parts_kind[0] == "" and len(values) > 1:
                desc = f"{desc} (file {values[0]})"
            for kind, raw in zip(parts_kind, values):
                if not kind:
                    continue
                try:
                    load.indicators.append(make_indicator(kind, raw, feed=load.name, source=source,
                                                          confidence=confidence, id=a.get("uuid", ""),
                                                          description=desc, labels=tags))
                except IocValueError as exc:
                    load.problems.append(FeedProblem(where, str(exc)))


def misp_manifest_events(manifest: Any, origin: str) -> list[str]:
    """Event uuids listed in a MISP feed ``manifest.json``."""
    if not isinstance(manifest, dict) or not all(isinstance(v, dict) for v in manifest.values()):
        raise FeedError(f"{origin}: not a MISP manifest (expected {{\"<event uuid>\": {{...}}, ...}})")
    for key in manifest:
        # the key becomes a file name or URL path: nothing but a uuid may get through
        if not _UUID.fullmatch(key):
            raise FeedError(f"{origin}: manifest key {key[:80]!r} is not an event uuid")
    return list(manifest)
