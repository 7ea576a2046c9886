"""First-seen domains: a DNS name (or its registered domain) never queried before.

Malware reaching a fresh C2 domain, a camera told to phone a new "cloud", DGA names:
all show up as a name the city's networks have never asked for. The detector learns
every name queried during ``learning_s`` after the first DNS query it sees (the
baseline), then reports each name not in the set, once (it is added when reported).

The set is an LRU of at most ``max_keys`` names: a name not queried for a long time
may be forgotten and reported again, which is the right answer for a name that left
the baseline. Names under ``ignore_suffixes`` (reverse lookups, ``.local``) are skipped.

Registered domain: without the Public Suffix List (a dependency and a data file to keep
current), the last two labels are taken, or the last three when the second-to-last is a
common second-level label under a two-letter country code (``hcmcity.gov.vn``,
``example.co.uk``, ``foo.com.vn``). A wrong cut only merges or splits what is
"the same domain", it never hides a new name from the first-seen set.

Rule id ``net:first_seen_domain``; ATT&CK T1568 (Dynamic Resolution) and T1071.004 (DNS).
"""
from __future__ import annotations

from typing import Any

from core.detectors import DetectorSpec
from core.protocols import Detection
from detections.network._common import EMPTY, BoundedMap, event_time, field
from detections.network.base import NetworkDetector
from detections.network.settings import FirstSeenSettings
from detections.network.zones import ZoneMap

__all__ = ["FirstSeenDomainDetector", "registered_domain"]

_SECOND_LEVEL = frozenset({"co", "com", "net", "org", "gov", "edu", "ac", "or", "ne", "go", "mil", "info", "biz",
                           "int", "health", "name", "pro"})


def registered_domain(name: str) -> str:
    """``a.b.example.com`` -> ``example.com``; ``x.hcmcity.gov.vn`` -> ``hcmcity.gov.vn``."""
    labels = name.split(".")
    if len(labels) <= 2:
        return name
    if len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


class FirstSeenDomainDetector(NetworkDetector):
    """``core.protocols.Detector`` for DNS names queried for the first time after learning."""

    partitioned = False  # one learning period and baseline over every source: the server keeps it

    spec = DetectorSpec(
        rule_id="net:first_seen_domain",
        title="First-seen domain after the learning period",
        title_vi="Tên miền lần đầu xuất hiện sau giai đoạn học",
        level="low",
        tags=("attack.command-and-control", "attack.t1568", "attack.t1071.004"),
        consumes=("dns_query",),
        settings_key="first_seen_domain",
        settings=FirstSeenSettings,
    )

    def __init__(self, settings: FirstSeenSettings | None = None, zones: ZoneMap | None = None) -> None:
        self.settings = settings or FirstSeenSettings()
        self.zones = zones or ZoneMap()
        self.known: BoundedMap[str, float] = BoundedMap(self.settings.max_keys)
        self.first_time: float | None = None
        self._suffixes = tuple("." + s.strip(".").lower() for s in self.settings.ignore_suffixes)
        self._exact = frozenset(s.strip(".").lower() for s in self.settings.ignore_suffixes)
        self._zones, self._default = self.settings.table()

    def _name(self, event: Any) -> str | None:
        action = (event.get("event") or EMPTY).get("action")
        dns = event.get("dns") or EMPTY
        if action != "dns_query" and not (action is None and dns.get("type") == "query"):
            return None
        q = (dns.get("question") or EMPTY).get("name")
        if not isinstance(q, str) or not q:
            return None
        q = q.strip().rstrip(".").lower()
        if not q or q in self._exact or q.endswith(self._suffixes) or "." not in q:
            return None
        return registered_domain(q) if self.settings.registered_domain else q

    def state_sizes(self) -> dict[str, int]:
        return {"names": len(self.known)}

    def check(self, event: Any) -> list[Detection]:
        name = self._name(event)
        if name is None:
            return []
        now = event_time(event)
        if self.first_time is None:
            self.first_time = now
        known = self.known
        if name in known:
            known.move_to_end(name)
            known[name] = now
            return []
        known.put(name, now)
        th = self._zones.get(self.zones.zone_of(event, "source"), self._default)
        if now - self.first_time < th.learning_s or not th.enabled:
            return []
        qname = field(event, "dns", "question", "name")
        src = field(event, "source", "ip")
        return [Detection(
            rule_id=self.rule_id,
            title=f"First-seen domain {name} queried by {src}",
            level=th.level,
            events=[event],
            tags=list(self.spec.tags),
            engine="network",
            description=f"{src} asked for {qname}; {name} was never queried in the "
                        f"{th.learning_s:g} s baseline or since. Triage: look the domain up (age, "
                        "registrar, intel), and check what the host did next with the answer.",
            group_key=f"dns.registered_domain={name}",
            extra={"domain": name, "dns.question.name": qname, "source.ip": src,
                   "baseline_names": len(known), "zone": self.zones.zone_of(event, "source")},
        )]
