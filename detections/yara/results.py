"""What a scan found, in a shape that serialises to one JSON line and converts to
:class:`core.protocols.Detection` for the alert stage."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yara

from core.levels import LEVELS
from core.events import Event, utc_now_iso
from core.protocols import Detection

__all__ = ["StringHit", "RuleMatch", "ScanResult", "convert_matches", "escape_snippet", "to_detections", "LEVELS"]

_LEVEL_ALIASES = {"info": "informational", "moderate": "medium", "severe": "critical", "crit": "critical"}


@dataclass(slots=True)
class StringHit:
    id: str
    offset: int
    data: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "offset": self.offset, "data": self.data}


@dataclass(slots=True)
class RuleMatch:
    rule: str
    namespace: str
    tags: list[str]
    meta: dict[str, Any]
    strings: list[StringHit]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "namespace": self.namespace,
            "tags": self.tags,
            "meta": self.meta,
            "strings": [s.to_dict() for s in self.strings],
        }


@dataclass(slots=True)
class ScanResult:
    """One scanned object: a file, or an archive member (``path`` is ``archive!member``)."""

    path: str
    sha256: str | None
    size: int | None
    matches: list[RuleMatch] = field(default_factory=list)
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    depth: int = 0
    incomplete: list[str] = field(default_factory=list)
    """On a top-level result: why the scan did not see everything (empty: complete)."""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "matches": [m.to_dict() for m in self.matches],
            "skipped": self.skipped,
        }
        if self.notes:
            d["notes"] = self.notes
        if self.incomplete:
            d["incomplete"] = self.incomplete
        return d


def escape_snippet(data: bytes, limit: int) -> str:
    """Printable ASCII kept, everything else as ``\\xNN``; at most ``limit`` input bytes."""
    cut = data[:limit]
    out = []
    for b in cut:
        if b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    s = "".join(out)
    return s + ("..." if len(data) > limit else "")


def convert_matches(
    matches: list[yara.Match], *, max_strings: int, max_instances: int, snippet_bytes: int
) -> list[RuleMatch]:
    out = []
    for m in matches:
        hits: list[StringHit] = []
        for sm in m.strings[:max_strings]:
            for inst in sm.instances[:max_instances]:
                hits.append(StringHit(sm.identifier, inst.offset, escape_snippet(inst.matched_data, snippet_bytes)))
        out.append(RuleMatch(m.rule, m.namespace, list(m.tags), dict(m.meta), hits))
    return out


def _level(meta: dict[str, Any]) -> str:
    for key in ("level", "severity"):
        v = meta.get(key)
        if isinstance(v, str):
            v = _LEVEL_ALIASES.get(v.strip().lower(), v.strip().lower())
            if v in LEVELS:
                return v
    return "high"


def _tags(m: RuleMatch) -> list[str]:
    tags: list[str] = []
    raw = m.meta.get("tags")
    if isinstance(raw, str):
        tags.extend(t for t in raw.replace(",", " ").split() if t)
    tags.extend(m.tags)
    seen: set[str] = set()
    return [t for t in tags if not (t in seen or seen.add(t))]


def file_event(result: ScanResult) -> Event:
    """An ECS event describing the scanned file, for detections not triggered by an event."""
    name = result.path.rsplit("!", 1)[-1].rsplit("/", 1)[-1]
    ev: Event = {
        "@timestamp": utc_now_iso(),
        "event": {"kind": "alert", "category": ["file", "malware"], "module": "yara", "dataset": "yara.scan"},
        "file": {"path": result.path, "name": name},
    }
    if result.size is not None:
        ev["file"]["size"] = result.size
    if result.sha256:
        ev["file"]["hash"] = {"sha256": result.sha256}
    return ev


def to_detections(result: ScanResult, events: list[Event] | None = None) -> list[Detection]:
    """One detection per matched rule; ``events`` defaults to an ECS file event for the result."""
    dets = []
    for m in result.matches:
        evs = events if events is not None else [file_event(result)]
        desc = m.meta.get("description")
        title = m.meta.get("title")
        dets.append(Detection(
            rule_id=f"yara:{m.namespace}.{m.rule}",
            title=title if isinstance(title, str) and title else m.rule,
            level=_level(m.meta),
            events=list(evs),
            tags=_tags(m),
            engine="yara",
            description=desc if isinstance(desc, str) else "",
            group_key=result.sha256,
            extra={
                "file.path": result.path,
                "file.hash.sha256": result.sha256,
                "file.size": result.size,
                "namespace": m.namespace,
                "meta": m.meta,
                "strings": [s.to_dict() for s in m.strings],
            },
        ))
    return dets
