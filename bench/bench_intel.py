"""Threat-intel benchmark: IntelMatcher events/s on generated ECS events against 100k IOCs,
with a same-run baseline of a plain Python set lookup on one field.

IOCs: 40k IPv4, 5k CIDRs (/16 to /28), 30k domains, 10k URLs, 15k hashes. Events carry
source/destination IPs; 30% a DNS question (often a subdomain), 20% a URL, 10% a file
hash; about 1% of each field hits. Events are generated in chunks outside the timed
section (1M events in total, 200k quick). The matcher checks every field of
:data:`detections.intel.FIELDS` that an event has; the baseline checks one.
"""
from __future__ import annotations

import ipaddress
import random
import time
from typing import Any

_TLDS = ["com", "net", "org", "vn", "example", "info", "io"]


def _domain(rng: random.Random) -> str:
    return f"{rng.choice('abcdefghijklmnopqrstuvwxyz')}{rng.getrandbits(40):x}.{rng.choice(_TLDS)}"


def _ip(rng: random.Random) -> str:
    return str(ipaddress.IPv4Address(rng.getrandbits(32)))


def build_iocs(rng: random.Random) -> dict[str, list[str]]:
    return {
        "ip": [_ip(rng) for _ in range(40_000)],
        "cidr": [str(ipaddress.ip_network(f"{_ip(rng)}/{rng.randint(16, 28)}", strict=False)) for _ in range(5_000)],
        "domain": [_domain(rng) for _ in range(30_000)],
        "url": [f"http://{_domain(rng)}/p/{rng.getrandbits(32):x}.sh" for _ in range(10_000)],
        "sha256": [f"{rng.getrandbits(256):064x}" for _ in range(10_000)],
        "md5": [f"{rng.getrandbits(128):032x}" for _ in range(5_000)],
    }


def make_events(rng: random.Random, n: int, iocs: dict[str, list[str]]) -> list[dict[str, Any]]:
    ips, domains, urls, hashes = iocs["ip"], iocs["domain"], iocs["url"], iocs["sha256"]
    out = []
    for i in range(n):
        ev: dict[str, Any] = {
            "@timestamp": "2026-11-25T01:00:00.000Z",
            "event": {"dataset": "zeek.conn", "category": ["network"]},
            "source": {"ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                       "port": rng.randrange(1024, 65535)},
            "destination": {"ip": rng.choice(ips) if rng.random() < 0.01 else _ip(rng), "port": 443},
            "host": {"name": f"cam-{i % 5000:04d}"},
        }
        r = rng.random()
        if r < 0.30:
            name = rng.choice(domains) if rng.random() < 0.01 else _domain(rng)
            ev["dns"] = {"question": {"name": f"www.{name}"}}
        elif r < 0.50:
            ev["url"] = {"full": rng.choice(urls) if rng.random() < 0.01 else f"https://{_domain(rng)}/index.html"}
        elif r < 0.60:
            ev["file"] = {"hash": {"sha256": rng.choice(hashes) if rng.random() < 0.01 else f"{rng.getrandbits(256):064x}"}}
        out.append(ev)
    return out


def run(quick: bool) -> dict[str, Any]:
    from detections.intel import FIELDS, IntelMatcher, IocIndex
    from detections.intel.feedload import make_indicator

    rng = random.Random(11)
    iocs = build_iocs(rng)
    inds = [make_indicator(kind, v, feed="bench") for kind, values in iocs.items() for v in values]
    t0 = time.perf_counter()
    index = IocIndex.build(inds)
    build_s = time.perf_counter() - t0
    matcher = IntelMatcher(index)
    baseline_set = set(iocs["ip"])

    total = 200_000 if quick else 1_000_000
    chunk = 100_000
    match_s = base_s = match_cpu = base_cpu = 0.0
    detections = base_hits = 0
    done = 0
    while done < total:
        events = make_events(rng, min(chunk, total - done), iocs)
        t, c = time.perf_counter(), time.process_time()
        for ev in events:
            detections += len(matcher.process(ev))
        match_s += time.perf_counter() - t
        match_cpu += time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        for ev in events:
            if ev["destination"]["ip"] in baseline_set:
                base_hits += 1
        base_s += time.perf_counter() - t
        base_cpu += time.process_time() - c
        done += len(events)

    return {
        "events": total,
        "iocs": len(inds),
        "ioc_counts": index.counts,
        "cidr_intervals": len(index.nets4),
        "index_build_s": round(build_s, 3),
        "intel_matcher_events_s": round(total / match_s),
        "baseline_set_lookup_one_field_events_s": round(total / base_s),
        "ratio_vs_baseline": round(base_s / match_s, 4),
        "intel_matcher_events_per_cpu_s": round(total / match_cpu),
        "baseline_events_per_cpu_s": round(total / base_cpu),
        "cpu_ratio_vs_baseline": round(base_cpu / match_cpu, 4),
        "detections": detections,
        "baseline_hits": base_hits,
        "fields_known": len(FIELDS),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
