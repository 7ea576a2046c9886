"""``citysoc demo --check`` on a small city: every injected scenario is caught by one of
its expected rules, in a plausible time, and nothing in the normal week alerts."""
from __future__ import annotations

from pathlib import Path

from citysoc.demo.check import judge
from citysoc.demo.run import run_offline
from citysoc.wiring import open_soc
from core.alerts import AlertFilter
from core.assets import DEFAULT_INTERVALS
from core.settings import Settings

END = 1_795_600_800.0  # 2026-11-25T08:00:00Z


def test_every_scenario_detected_in_time_and_normal_week_is_quiet(tmp_path: Path) -> None:
    run = run_offline(tmp_path, cameras=22, days=3, end=END)
    verdicts, unexplained = judge(run)
    missed = [v.id for v in verdicts if not v.detected]
    assert not missed, missed
    no_response = [(v.id, v.expect_playbook, v.playbooks) for v in verdicts if not v.playbook_ok]
    assert not no_response, no_response  # every scenario's playbook ran (dry run) to success
    assert not unexplained, unexplained  # the ordinary week raises nothing
    assert run.dead_letters == 0
    by_id = {v.id: v for v in verdicts}
    assert len(by_id) == 9
    for v in verdicts:
        assert v.ttd_s is not None and 0 <= v.ttd_s < 3600, (v.id, v.ttd_s)
    # brute force fires on the 5th failure (12 s apart), not at the first one
    assert 30 <= by_id["mirai-camera"].ttd_s <= 120
    # silence is noticed after the expected interval, within one check step
    silent = by_id["warehouse-db-silent"].ttd_s
    assert 900 <= silent <= 900 + 2 * 300 + 400, silent
    assert "asset:unmanaged" in by_id["unmanaged-device"].fired
    # the alerts are in soc.db, attributed to the right assets and centers
    soc = open_soc(Settings(data=tmp_path))
    _n, silent_alerts = soc.alerts.list(AlertFilter(rule_id="asset:silent"))
    soc.close()
    assert [(a.entities.asset_id, a.entities.center) for a in silent_alerts] == [("wh-db-03", "warehouse")]
    assert DEFAULT_INTERVALS["db_node"] >= 600
