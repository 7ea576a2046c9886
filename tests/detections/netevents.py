"""Network events shaped like the network collector's output, for detector tests.

Built like ``tests/collectors/golden/net/protocols.json`` (nested ECS, ``event.action``,
``event.start``, ``event.duration`` in ns); failed logins as ``collectors.parsers.sshd``
emits them.
"""
from __future__ import annotations

import datetime as _dt

__all__ = ["T0", "iso", "flow", "dns_query", "ssh_failure"]

T0 = _dt.datetime(2026, 11, 25, 10, 0, tzinfo=_dt.timezone.utc).timestamp()


def iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat().replace("+00:00", "Z")


def flow(src: str, dst: str, dport: int | None, t: float, *, duration: float = 0.01, proto: str | None = None,
         transport: str = "tcp", **extra) -> dict:
    ev = {
        "@timestamp": iso(t + duration),
        "event": {"kind": "event", "category": ["network"], "type": ["connection", "end"],
                  "action": "network_flow", "dataset": "network.flow", "module": "network",
                  "start": iso(t), "end": iso(t + duration), "duration": int(duration * 1e9), "reason": "rst"},
        "source": {"ip": src, "port": 40000 + (int(t * 10) % 20000), "bytes": 60, "packets": 1},
        "destination": {"ip": dst, "bytes": 40, "packets": 1},
        "network": {"transport": transport, "type": "ipv4", "bytes": 100, "packets": 2},
    }
    if dport is not None:
        ev["destination"]["port"] = dport
    if proto:
        ev["network"]["protocol"] = proto
    for k, v in extra.items():
        ev[k] = v
    return ev


def dns_query(src: str, name: str, t: float) -> dict:
    return {"@timestamp": iso(t), "event": {"kind": "event", "category": ["network"], "type": ["protocol"],
                                            "action": "dns_query", "dataset": "network.dns", "module": "network"},
            "source": {"ip": src, "port": 40000}, "destination": {"ip": "10.20.0.53", "port": 53},
            "dns": {"type": "query", "question": {"name": name, "type": "A"}},
            "network": {"transport": "udp", "protocol": "dns"}}


def ssh_failure(src: str, user: str, t: float) -> dict:
    """As collectors.parsers.sshd emits 'Failed password for root from ...'."""
    return {"@timestamp": iso(t), "event": {"kind": "event", "category": ["authentication"], "type": ["info"],
                                            "action": "ssh-login", "outcome": "failure", "dataset": "system.auth",
                                            "module": "system"},
            "host": {"name": "srv-soc-01"}, "user": {"name": user}, "source": {"ip": src, "port": 41022}}
