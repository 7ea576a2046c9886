"""Network detectors benchmark: all five detectors over a large generated flow stream.

The stream looks like a district's capture: office clients talking to servers, NVRs
pulling RTSP from cameras and cameras pushing to their NVR, DNS queries over a pool of
known names, scattered failed SSH logins, and injected attacks (a vertical port scan,
a telnet brute force, a 60 s beacon, a camera talking to the Internet, new domains).
Events are nested ECS dicts shaped like the network collector's output.

Measured in one run, on the same chunks of events: **detectors** (``NetworkDetectors``
with every detector on and a zone table) against a **baseline** loop that only reads
the fields the detectors read (action, addresses, port, times, outcome, DNS name, asset)
from each event. Generation is not timed. Also reported: detections per rule, state
sizes after the run (the bounds at work) and peak RSS.
"""
from __future__ import annotations

import datetime as _dt
import gc
import random
import resource
import time
from collections import Counter
from typing import Any

from detections.network import NetworkDetectors

T0 = _dt.datetime(2026, 11, 25, 8, 0, tzinfo=_dt.timezone.utc).timestamp()
CHUNK = 50_000

SETTINGS = {
    "zones": {"10.20.0.0/16": "camera-lan", "10.20.0.0/24": "nvr", "10.40.0.0/16": "office", "10.10.0.0/24": "soc"},
    # NVRs pull RTSP from hundreds of cameras: not a horizontal scan; the SOC scanner is authorised.
    "port_scan": {"zones": {"soc": {"enabled": False}, "nvr": {"distinct_hosts": 5000}}},
    "camera_egress": {"camera_cidrs": ["10.20.1.0/24", "10.20.2.0/24", "10.20.3.0/24"],
                      "allow_default": ["10.20.0.0/24"]},
    "first_seen_domain": {"default": {"learning_s": 300}},
}


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _flow(src: str, sport: int, dst: str, dport: int, t: float, dur: float, proto: str | None = None) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "@timestamp": _iso(t + dur),
        "event": {"kind": "event", "category": ["network"], "type": ["connection", "end"], "action": "network_flow",
                  "dataset": "network.flow", "module": "network", "start": _iso(t), "end": _iso(t + dur),
                  "duration": int(dur * 1e9), "reason": "fin"},
        "source": {"ip": src, "port": sport, "bytes": 600, "packets": 6},
        "destination": {"ip": dst, "port": dport, "bytes": 4000, "packets": 5},
        "network": {"transport": "tcp", "type": "ipv4", "bytes": 4600, "packets": 11, "community_id": "1:x"},
        "observer": {"name": "eth1", "type": "sensor"},
    }
    if proto:
        ev["network"]["protocol"] = proto
    return ev


def _dns(src: str, name: str, t: float) -> dict[str, Any]:
    return {"@timestamp": _iso(t),
            "event": {"kind": "event", "category": ["network"], "type": ["protocol"], "action": "dns_query",
                      "dataset": "network.dns", "module": "network"},
            "source": {"ip": src, "port": 50000}, "destination": {"ip": "10.10.0.53", "port": 53},
            "dns": {"type": "query", "id": 1, "question": {"name": name, "type": "A", "class": "IN"}},
            "network": {"transport": "udp", "type": "ipv4", "protocol": "dns"}}


def _ssh_fail(src: str, t: float) -> dict[str, Any]:
    return {"@timestamp": _iso(t),
            "event": {"kind": "event", "category": ["authentication"], "type": ["info"], "action": "ssh-login",
                      "outcome": "failure", "dataset": "system.auth", "module": "system"},
            "host": {"name": "srv-dw-01"}, "user": {"name": "root"}, "source": {"ip": src, "port": 41000}}


class Stream:
    """Deterministic generator of the mixed stream, one chunk at a time."""

    def __init__(self, total: int, seed: int = 7) -> None:
        self.total = total
        self.rnd = random.Random(seed)
        self.span = 3600.0 * total / 1_000_000  # 1 M events ~ one hour of a district
        self.clients = [f"10.40.{i // 250}.{i % 250 + 1}" for i in range(2000)]
        self.servers = [f"10.30.{i // 50}.{i % 50 + 1}" for i in range(50)]
        self.cameras = [f"10.20.{1 + i // 250}.{i % 250 + 1}" for i in range(750)]
        self.nvrs = [f"10.20.0.{i + 1}" for i in range(10)]
        self.domains = [f"svc{i}.{'hcmcity.gov.vn' if i % 3 else f'vendor{i % 200}.com'}" for i in range(5000)]
        self.emitted = 0

    def _attack(self, i: int, t: float) -> list[dict[str, Any]]:
        n = self.total
        out: list[dict[str, Any]] = []
        if i == n // 3:  # vertical port scan from an office PC
            out += [_flow("10.40.3.77", 50000 + p, "10.30.0.9", p, t + p * 0.001, 0.001) for p in range(1, 1001)]
        if i == n // 2:  # telnet brute force against a camera
            out += [_flow("203.0.113.66", 40000 + k, "10.20.1.15", 23, t + k * 0.5, 0.3, "telnet") for k in range(60)]
        if i % max(1, n // 100) == 0:  # a beacon every 1 % of the stream (36 s apart in the 1 M run, 7.2 s in the quick one)
            out.append(_flow("10.40.7.7", 51000 + i % 1000, "203.0.113.200", 443, t, 0.4, "tls"))
        if i == (2 * n) // 3:  # a camera phoning a cloud relay
            out.append(_flow("10.20.2.44", 40001, "198.51.100.7", 443, t, 2.0, "tls"))
        if i % max(1, n // 20) == 0 and i > n // 5:  # new domains after learning
            out.append(_dns("10.40.1.9", f"x{i}.fresh-{i}.example", t))
        return out

    def chunk(self) -> list[dict[str, Any]]:
        rnd, out = self.rnd, []
        n = min(CHUNK, self.total - self.emitted)
        for k in range(n):
            i = self.emitted + k
            t = T0 + self.span * i / self.total
            r = rnd.random()
            if r < 0.62:
                out.append(_flow(rnd.choice(self.clients), rnd.randint(32768, 60999), rnd.choice(self.servers),
                                 rnd.choice((443, 443, 80, 5432, 8080)), t, rnd.uniform(0.01, 30)))
            elif r < 0.72:
                out.append(_flow(rnd.choice(self.nvrs), rnd.randint(32768, 60999), rnd.choice(self.cameras), 554, t,
                                 rnd.uniform(1, 600), "rtsp"))
            elif r < 0.80:
                out.append(_flow(rnd.choice(self.cameras), rnd.randint(32768, 60999), rnd.choice(self.nvrs), 8000, t,
                                 rnd.uniform(0.05, 2)))
            elif r < 0.97:
                out.append(_dns(rnd.choice(self.clients), rnd.choice(self.domains), t))
            else:
                out.append(_ssh_fail(f"10.40.{rnd.randint(0, 7)}.{rnd.randint(1, 250)}", t))
            out.extend(self._attack(i, t))
        self.emitted += n
        return out

    def done(self) -> bool:
        return self.emitted >= self.total


def _baseline(events: list[dict[str, Any]]) -> int:
    """Read what the detectors read, nothing else: the floor of any per-event work."""
    n = 0
    for ev in events:
        e = ev.get("event") or {}
        action = e.get("action")
        src = (ev.get("source") or {}).get("ip")
        dst = ev.get("destination") or {}
        if action == "network_flow":
            n += (src is not None) + (dst.get("ip") is not None) + (dst.get("port") or 0 > 0) \
                + (e.get("duration") is not None) + (e.get("start") is not None) + (ev.get("@timestamp") is not None)
            n += (ev.get("citysoc") or {}).get("asset") is not None
        elif action == "dns_query":
            n += (ev.get("dns") or {}).get("question", {}).get("name") is not None
        else:
            n += e.get("outcome") == "failure" and src is not None
    return n


def run(quick: bool = False) -> dict[str, Any]:
    total = 200_000 if quick else 1_000_000
    stream = Stream(total)
    nd = NetworkDetectors.from_settings(SETTINGS)
    det_s = base_s = 0.0
    events = 0
    dets: Counter[str] = Counter()
    examples: dict[str, Any] = {}
    gc.collect()
    while not stream.done():
        chunk = stream.chunk()
        # The chunk stands for one pipeline batch; frozen so the collector does not rescan
        # 50k generated events on every allocation burst of the detectors (both loops alike).
        gc.collect()
        gc.freeze()
        events += len(chunk)
        t = time.perf_counter()
        _baseline(chunk)
        base_s += time.perf_counter() - t
        t = time.perf_counter()
        for ev in chunk:
            for d in nd.process(ev):
                dets[d.rule_id] += 1
                examples.setdefault(d.rule_id, {"group_key": d.group_key, "title": d.title})
        det_s += time.perf_counter() - t
        gc.unfreeze()
        del chunk
    return {
        "events": events,
        "detectors_events_per_s": round(events / det_s),
        "baseline_events_per_s": round(events / base_s),
        "detectors_vs_baseline": round(base_s / det_s, 3),
        "detectors_s": round(det_s, 2),
        "baseline_s": round(base_s, 2),
        "us_per_event": round(det_s / events * 1e6, 2),
        "detections": dict(dets),
        "examples": examples,
        "state": nd.state_sizes(),
        "evicted": {"port_scan": nd.detector("net:port_scan").sources.evicted,  # type: ignore[attr-defined]
                    "beaconing": nd.detector("net:beaconing").pairs.evicted,  # type: ignore[attr-defined]
                    "brute_force": nd.detector("net:brute_force").keys.evicted,  # type: ignore[attr-defined]
                    "first_seen": nd.detector("net:first_seen_domain").known.evicted},  # type: ignore[attr-defined]
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
