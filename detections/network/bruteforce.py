"""Brute force: many failed logins, or many short connections to a login service, from one source.

Two signals, because the SOC does not always see both:

* **failed logins** from the logs and the wire: any event with ``event.outcome:
  failure`` that is an authentication (``event.category`` holds ``authentication``:
  sshd, camera/NVR, database, PAM, FTP replies) or an RTSP/HTTP ``401`` answer seen in
  traffic. Keyed by ``source.ip``: the attacker, whichever service it tries.
* **short connections** (flow summaries shorter than ``short_connection_s``) to a
  watched port (SSH, telnet, RTSP, camera web UIs): what a password-guessing tool looks
  like on the wire when the protocol is encrypted or not decoded. Keyed by
  (``source.ip``, ``destination.port``), so spraying one password over 500 cameras'
  RTSP counts as one attack.

Counts are timestamps in a per-key deque trimmed to the window (bounded by the
threshold: only the newest ``threshold`` matter). After firing, a key is quiet for one
window. Rule id ``net:brute_force``; ATT&CK T1110.
"""
from __future__ import annotations

import operator
from collections import deque
from typing import Any

from core.detectors import FAILED_LOGINS, DetectorSpec
from core.events import Event
from core.protocols import Detection
from detections.network._common import EMPTY, BoundedMap, categories, event_time, field, idle_after
from detections.network.base import NetworkDetector
from detections.network.settings import BruteForceSettings
from detections.network.zones import ZoneMap

__all__ = ["BruteForceDetector", "is_failed_login"]

_SAMPLE = 20


def is_failed_login(event: Event) -> bool:
    """True for a failed authentication (logs) or an RTSP/HTTP 401 answer (wire)."""
    if field(event, "event", "outcome") != "failure":
        return False
    if "authentication" in categories(event):
        return True
    status = field(event, "citysoc", "network", "rtsp", "status_code")
    if status is None:
        status = field(event, "http", "response", "status_code")
    return status == 401 or status == "401"


_LAST = operator.attrgetter("last")  # an entry's newest event time, what idle expiry reads

class _Key:
    __slots__ = ("times", "users", "targets", "fired_at", "last")

    def __init__(self) -> None:
        self.times: deque[float] = deque()
        self.users: dict[str, None] = {}
        self.targets: dict[str, None] = {}
        self.fired_at = float("-inf")
        self.last = float("-inf")
        """The newest event time this key saw (what idle expiry reads)."""


class BruteForceDetector(NetworkDetector):
    """``core.protocols.Detector`` for password guessing (failed logins, short connections)."""

    spec = DetectorSpec(
        rule_id="net:brute_force",
        title="Brute force: failed logins or short connections to a login service",
        title_vi="Dò mật khẩu: đăng nhập thất bại hoặc kết nối ngắn tới dịch vụ đăng nhập",
        level="high",
        tags=("attack.credential-access", "attack.t1110", "attack.t1110.001"),
        consumes=("network_flow", FAILED_LOGINS),
        settings_key="brute_force",
        settings=BruteForceSettings,
    )

    def __init__(self, settings: BruteForceSettings | None = None, zones: ZoneMap | None = None) -> None:
        self.settings = settings or BruteForceSettings()
        self.zones = zones or ZoneMap()
        self.ports = frozenset(self.settings.ports)
        self.keys: BoundedMap[tuple[Any, ...], _Key] = BoundedMap(self.settings.max_keys)
        self._zones, self._default = self.settings.table()
        self._idle_s = idle_after(self._default, self._zones)

    def state_sizes(self) -> dict[str, int]:
        return {"keys": len(self.keys)}

    def check(self, event: Any) -> list[Detection]:
        e = event.get("event") or EMPTY
        if e.get("action") == "network_flow":
            port = (event.get("destination") or EMPTY).get("port")
            if port not in self.ports:
                return []
            dur = e.get("duration")
            th = self._thresholds(event)
            if th is None or dur is None or dur / 1e9 >= th.short_connection_s:
                return []
            src = (event.get("source") or EMPTY).get("ip")
            if src is None:
                return []
            return self._count(event, ("connections", src, port), th.connections, th, "connections")
        if e.get("outcome") != "failure" or not is_failed_login(event):
            return []
        src = (event.get("source") or EMPTY).get("ip")
        if src is None:
            return []
        th = self._thresholds(event)
        if th is None:
            return []
        return self._count(event, ("failures", src), th.failures, th, "failed_logins")

    def _thresholds(self, event: Any) -> Any:
        th = self._zones.get(self.zones.zone_of(event, "source"), self._default)
        return th if th.enabled else None

    def _count(self, event: Event, key: tuple[Any, ...], threshold: int, th: Any, signal: str) -> list[Detection]:
        now = event_time(event)
        self.keys.expire_idle(now, self._idle_s, _LAST)
        st = self.keys.touch(key, _Key)
        if now > st.last:
            st.last = now
        times = st.times
        times.append(now)
        horizon = now - th.window_s
        while times and times[0] < horizon:
            times.popleft()
        while len(times) > threshold:
            times.popleft()
        user = field(event, "user", "name")
        if user is not None and len(st.users) < _SAMPLE:
            st.users[str(user)] = None
        target = field(event, "destination", "ip") or field(event, "host", "name") or field(
            event, "observer", "hostname")
        if target is not None and len(st.targets) < _SAMPLE:
            st.targets[str(target)] = None
        if len(times) < threshold or now - st.fired_at < th.window_s:
            return []
        st.fired_at = now
        span = times[-1] - times[0]
        count = len(times)
        users, targets = list(st.users), list(st.targets)
        times.clear()
        st.users, st.targets = {}, {}
        src = key[1]
        port = key[2] if signal == "connections" else None
        what = (f"{count} failed logins" if signal == "failed_logins"
                else f"{count} short connections to port {port}")
        return [Detection(
            rule_id=self.rule_id,
            title=f"Brute force from {src} against {_targets(targets)}: {what}",
            level=th.level,
            events=[event],
            tags=list(self.spec.tags),
            engine="network",
            description=f"{src} made {what} within {span:.0f} s (window {th.window_s:g} s). Triage: "
                        "did any login from this source succeed afterwards? Block the source and "
                        "rotate the attacked accounts' passwords (camera defaults first).",
            group_key=f"source.ip={src}|signal={signal}" + (f"|destination.port={port}" if port else ""),
            extra={"signal": signal, "source.ip": src, "count": count, "span_s": round(span, 3),
                   "destination.port": port, "users": users, "targets": targets, "window_s": th.window_s,
                   "zone": self.zones.zone_of(event, "source")},
        )]


def _targets(targets: list[str]) -> str:
    """The attacked host for a title: one name, or how many."""
    if not targets:
        return "unknown target"
    return targets[0] if len(targets) == 1 else f"{len(targets)} hosts ({targets[0]}, ...)"
