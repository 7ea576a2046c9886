"""Alert recording is batched (storage/socdb/alerts.py ``record``: a batch's same-key
alerts merged in memory, open alerts found with one query, new alerts inserted with their
incident id). Batching must not change what is stored: the same detections recorded one
by one and in batches give the same alerts and the same incidents.

The events are Elastic's expected ECS documents from the pipeline tests in
``corpora/ecs-parity`` (auth, firewall, IDS, web): data we did not write. Rules, levels and
groupings are drawn with a fixed seed so that keys repeat within and across batches,
same-behaviour rules fold, samples overflow and some alerts are closed in between."""
from __future__ import annotations

import random

import orjson
import pytest

from core.alerts import DEFAULT_BEHAVIOURS, MAX_SAMPLE_EVENTS, AlertFilter, AlertRecorder
from core.events import stamp
from core.protocols import Detection
from storage.socdb import open_socdb
from citysoc.testing import corpora_dir

CORPUS = corpora_dir() / "ecs-parity"
STREAMS = ("system.auth", "iptables.log", "suricata.eve", "fortinet_fortigate.log", "nginx.access", "zeek.ssh",
           "cisco_asa.log")


def _corpus_events() -> list[dict]:
    out: list[dict] = []
    for stream in STREAMS:
        for f in sorted((CORPUS / stream).glob("*-expected.json")):
            out += [d for d in orjson.loads(f.read_bytes()).get("expected", []) if isinstance(d, dict)]
    return out


def _detections(seed: int, n: int) -> list[Detection]:
    rnd = random.Random(seed)
    events = _corpus_events()
    folded = [r for rules in DEFAULT_BEHAVIOURS.values() for r in rules]
    rules = ["sigma:a", "sigma:b", "net:port_scan", *folded]
    out = []
    for _ in range(n):
        evs = [stamp(dict(e)) for e in rnd.sample(events, rnd.choice([1, 1, 2, MAX_SAMPLE_EVENTS + 3]))]
        rule = rnd.choice(rules)
        group = rnd.choice([None, None, f"g{rnd.randrange(3)}"])
        out.append(Detection(rule_id=rule, title=f"title of {rule}", level=rnd.choice(["low", "medium", "high"]),
                             tags=[rnd.choice(["attack.t1110", "attack.t1046", "city.camera"])], events=evs,
                             group_key=group))
    return out


def _snapshot(soc) -> tuple[list, list]:
    db = soc.alerts.db.reader()
    alerts = [dict(r) for r in db.execute("SELECT * FROM alerts ORDER BY id")]
    for a in alerts:  # the analyst's close is stamped with the wall clock
        if a["status"] == "closed":
            a.pop("updated_at")
    incidents = [dict(r) for r in db.execute("SELECT * FROM incidents ORDER BY id")]
    return alerts, incidents


@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpora/ecs-parity not present")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batched_recording_stores_what_one_by_one_recording_stores(tmp_path, seed):
    dets = _detections(seed, 400)
    assert len({id(e) for d in dets for e in d.events}) > 400
    socs = [open_socdb(tmp_path / name) for name in ("one", "batch")]
    try:
        times = [f"2026-12-03T08:{m:02d}:00.000Z" for m in range(8)]
        for k, soc in enumerate(socs):
            now = [times[0]]
            rec = AlertRecorder(soc.alerts, window_s=150, clock=lambda now=now: now[0])
            for part in range(8):  # 8 emits a minute apart: the window lets some keys expire
                now[0] = times[part]
                chunk = dets[part * 50:(part + 1) * 50]
                if k == 0:
                    for d in chunk:
                        rec.emit([d])
                else:
                    rec.emit(chunk)
                if part == 3:  # an analyst closes the oldest open alert: the next ones start anew
                    first = soc.alerts.list(AlertFilter(sort="id"))[1][0]
                    soc.alerts.update(first.id, status="closed", resolution="false_positive")
        one, batch = (_snapshot(s) for s in socs)
        assert len(one[0]) > 20 and len(one[1]) > 3  # the seeds give several alerts and incidents
        assert any(a["count"] > 1 for a in one[0]) and any(len(orjson.loads(a["rules"])) > 1 for a in one[0])
        for name, a, b in (("alerts", one[0], batch[0]), ("incidents", one[1], batch[1])):
            assert len(a) == len(b), name
            for ra, rb in zip(a, b):
                assert {k: (v, rb[k]) for k, v in ra.items() if rb[k] != v} == {}, (name, ra["id"])
    finally:
        for s in socs:
            s.close()


def test_a_full_sample_is_kept_and_not_reloaded_as_the_alert_grows(tmp_path):
    """Growth past MAX_SAMPLE_EVENTS keeps the first sample events, counts every one, and
    the grown alert handed to listeners carries no sample (it was not loaded: under a scan
    loading it on every growth was a quarter of the server's time)."""
    events = [stamp(dict(e)) for e in _corpus_events()[:MAX_SAMPLE_EVENTS + 5]]
    soc = open_socdb(tmp_path / "soc")
    try:
        rec = AlertRecorder(soc.alerts, window_s=900, clock=lambda: "2026-12-03T08:00:00.000Z")
        seen = []
        rec.listeners.append(seen.extend)
        for ev in events:
            rec.emit([Detection(rule_id="sigma:a", title="a", level="low", events=[ev], group_key="g")])
        alerts = soc.alerts.list(AlertFilter(sort="id"))[1]
        assert len(alerts) == 1 and alerts[0].count == len(events)
        stored = soc.alerts.get(alerts[0].id).events
        assert stored == [orjson.loads(orjson.dumps(e)) for e in events[:MAX_SAMPLE_EVENTS]]
        assert [len(ch.alert.events) for ch in seen][MAX_SAMPLE_EVENTS - 1:] == [MAX_SAMPLE_EVENTS] + [0] * 5
    finally:
        soc.close()
