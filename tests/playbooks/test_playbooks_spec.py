"""Loading and validating playbooks, the expression language and templates, and schedules.

Every error names the file, the YAML path and the line; a file with any error is left
out whole; expressions cannot reach Python."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.alerts import Alert, Entities
from pbhelpers import make_runner
from playbooks.actions import ACTIONS
from playbooks.expressions import ExpressionError, compile_expression
from playbooks.rehearsal import Script
from playbooks.spec import LIBRARY, PlaybookLoadError, load_folders, load_playbook
from playbooks.templating import TemplateError, compile_template

BAD = """\
name: Bad Name
trigger:
  alert: {tags: [x], level: [severe]}
  schedule: {cron: "61 * * * *"}
inputs:
  ip: {type: ipaddr}
steps:
  - name: first
    action: block_ip
    with: {ip: "{{ inputs.ip }}", ttl: 5}
  - name: second
    action: nuke_city
    with: {x: 1}
  - name: third
    action: notify_email
    with: {subject: "{{ alert.level ==  }}", body: "{{ inputs.nope }}"}
    if: "steps.fourth.status == 'succeeded'"
    on_error: {retry: 99, then: explode}
  - name: fourth
    action: enrich
    with: {indicator: "{{ steps.third.output.x }}"}
    approval: {role: mayor}
  - name: first
    action: enrich
    with: {indicator: a}
    colour: blue
"""


def _errors(tmp_path: Path, text: str) -> list[str]:
    p = tmp_path / "pb.yml"
    p.write_text(text)
    with pytest.raises(PlaybookLoadError) as exc:
        load_playbook(p, ACTIONS)
    return [f"{e.line}|{e.path}|{e.message}" for e in exc.value.errors]


def test_library_loads_and_every_playbook_has_a_trigger():
    cat = load_folders([LIBRARY], ACTIONS)
    assert cat.errors == []
    assert sorted(cat.playbooks) == ["camera-bruteforce", "camera-unknown-device", "forecasting-model-changed",
                                     "warehouse-account-abuse", "warehouse-ingest-yara"]
    for pb in cat.playbooks.values():
        assert pb.alert_triggers, pb.name
        for st in pb.steps:
            if st.destructive:
                assert st.approval is not None, (pb.name, st.name)


def test_every_problem_is_reported_with_path_and_line(tmp_path: Path):
    errs = _errors(tmp_path, BAD)
    want = [
        ("1|name|", "every playbook needs a name"),
        ("3|trigger.alert.level|", "unknown level 'severe'"),
        ("4|trigger.schedule.cron|", "bad cron expression"),
        ("6|inputs.ip.type|", "unknown type 'ipaddr'"),
        ("10|steps[0].with.ttl|", "action block_ip has no input 'ttl'"),
        ("8|steps[0].approval|", "action block_ip is destructive"),
        ("12|steps[1].action|", "unknown action 'nuke_city'"),
        ("16|steps[2].with.subject|", "bad template"),
        ("14|steps[2]|", "uses inputs.nope, which the playbook does not declare"),
        ("18|steps[2].on_error.retry|", "expected a number from 0 to 10"),
        ("18|steps[2].on_error.then|", "expected abort or continue"),
        ("22|steps[3].approval.role|", "unknown role 'mayor'"),
        ("23|steps[4].name|", "step name 'first' is used twice"),
        ("", "|cycle between steps: "),
    ]
    for prefix, fragment in want:
        assert any(e.startswith(prefix) and fragment in e for e in errs), (prefix, fragment, errs)


def test_unknown_keys_missing_inputs_and_unknown_step_refs(tmp_path: Path):
    errs = _errors(tmp_path, """\
name: x
tigger: {manual: true}
steps:
  - name: a
    action: notify_email
    with: {subject: hi}
  - name: b
    action: enrich
    with: {indicator: "{{ steps.zzz.output.q }}"}
""")
    assert any(e.startswith("2|tigger|unknown key 'tigger'") for e in errs), errs
    assert any(e.startswith("6|steps[0].with|missing input 'body'") for e in errs), errs
    assert any("refers to step 'zzz', which does not exist" in e for e in errs), errs


def test_a_bad_file_is_left_out_whole_and_good_ones_load(tmp_path: Path):
    (tmp_path / "good.yml").write_text("name: good\nsteps:\n  - {name: a, action: enrich, with: {indicator: x}}\n")
    (tmp_path / "bad.yml").write_text("name: bad\nsteps:\n  - {name: a, action: enrich, with: {indicator: x}}\n"
                                      "  - {name: b, action: nope}\n")
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    (tmp_path / "dup.yml").write_text("name: good\nsteps:\n  - {name: a, action: enrich, with: {indicator: x}}\n")
    cat = load_folders([tmp_path], ACTIONS)
    assert list(cat.playbooks) == ["good"]
    msgs = [str(e) for e in cat.errors]
    assert any("bad.yml:4: steps[1].action: unknown action 'nope'" in m for m in msgs), msgs
    assert any("broken.yaml" in m and "invalid YAML" in m for m in msgs), msgs
    assert any("dup.yml" in m and "already used by" in m for m in msgs), msgs


def test_steps_run_after_the_steps_they_use(tmp_path: Path):
    p = tmp_path / "order.yml"
    p.write_text("""\
name: order
steps:
  - {name: report, action: enrich, with: {indicator: "{{ steps.look.output.asset }}"}}
  - {name: look, action: enrich, with: {indicator: x}, needs: []}
""")
    pb = load_playbook(p, ACTIONS)
    assert [s.name for s in pb.steps] == ["look", "report"]


CTX = {"alert": {"level": "high", "tags": ["a", "b"], "entities": {"source_ip": "10.1.2.3"}, "count": 3,
                 "events": [{"file": {"path": "/x"}}]},
       "inputs": {"n": 5, "name": "cam"}, "steps": {"s": {"status": "failed", "output": {}}}}


@pytest.mark.parametrize("src,value", [
    ("alert.level == 'high' and inputs.n >= 5", True),
    ("alert.level in ['low', 'medium']", False),
    ("not (alert.count > 2)", False),
    ("'b' in alert.tags and 'z' not in alert.tags", True),
    ("alert.missing.deeper == null", True),
    ("alert.missing > 3", False),
    ("in_cidr(alert.entities.source_ip, '10.0.0.0/8')", True),
    ("glob(inputs.name, 'ca*') and len(alert.tags) == 2", True),
    ("first(alert.events).file.path", "/x"),
    ("alert.events[0].file.path + ':' + str(inputs.n)", "/x:5"),
    ("default(alert.entities.user, 'nobody')", "nobody"),
    ("inputs.n - 2", 3),
    ("steps.s.status != 'succeeded'", True),
])
def test_expressions(src, value):
    assert compile_expression(src).evaluate(CTX) == value


@pytest.mark.parametrize("src,fragment,pos", [
    ("__import__('os').system('id')", "unknown function '__import__'", 0),
    ("alert.level ==", "unexpected the end", 14),
    ("open('/etc/passwd')", "unknown function 'open'", 0),
    ("os.system", "unknown name 'os'", 0),
    ("alert.level = 'x'", "unexpected character '='", 12),
    ("high", "unknown name 'high'", 0),
    ("", "empty expression", 0),
])
def test_expressions_refuse_what_they_cannot_do(src, fragment, pos):
    with pytest.raises(ExpressionError) as exc:
        compile_expression(src)
    assert fragment in exc.value.message and exc.value.position == pos


def test_python_attributes_are_not_reachable():
    assert compile_expression("alert.__class__").evaluate(CTX) is None
    assert compile_expression("inputs.name.upper").evaluate(CTX) is None
    with pytest.raises(ExpressionError, match="cannot compare"):
        compile_expression("alert.level > 3").evaluate(CTX)


def test_templates_keep_types_and_interpolate():
    t = compile_template({"n": "{{ inputs.n }}", "s": "n={{ inputs.n }} tags={{ alert.tags }}",
                          "l": ["{{ alert.count }}", "plain"], "raw": 7})
    assert t.render(CTX) == {"n": 5, "s": "n=5 tags=a, b", "l": [3, "plain"], "raw": 7}
    for bad in ("{{ inputs.n ", "x }}", "{{ inputs.n == }}"):
        with pytest.raises(TemplateError):
            compile_template({"k": bad})


def test_alert_trigger_criteria():
    pb = load_folders([LIBRARY], ACTIONS).playbooks["camera-bruteforce"]

    def alert(tags, asset_type=None):
        evs = [{"citysoc": {"asset": {"type": asset_type}}}] if asset_type else []
        return Alert(id=1, rule_id="r", rule_title="t", level="high", tags=tags, engine="sigma", description="",
                     entities=Entities(), risk_score=1, status="new", resolution=None, assignee=None, first_seen="",
                     last_seen="", count=1, dedupe_key="k", created_at="", updated_at="", events=evs)

    assert pb.matches(alert(["citysoc.camera.bruteforce"]))
    assert pb.matches(alert(["attack.t1110.001"], "nvr"))
    assert not pb.matches(alert(["attack.t1110.001"], "server")), "a generic brute force needs a camera asset"
    assert not pb.matches(alert(["attack.t1059"], "camera"))


def test_schedules_persist_in_the_job_store_and_fire_runs(soc, tmp_path: Path):
    from storage.playbook_runs import SQLiteJobStore

    folder = tmp_path / "sched"
    folder.mkdir()
    (folder / "s.yml").write_text("""\
name: hourly-check
trigger: {schedule: {cron: "0 * * * *"}, manual: false}
steps:
  - {name: look, action: enrich, with: {indicator: "nightly"}}
""")
    script = Script({"look": [{"asset": None, "intel": [], "sources": []}]})
    runner = make_runner(soc, tmp_path, execute=script, folders=[folder])
    runner.jobstore = SQLiteJobStore(tmp_path / "jobs.db")

    async def first() -> list[str]:
        ids = await runner.start_schedules()
        jobs = runner.scheduler.jobs()
        from playbooks.schedule import fire

        await fire("hourly-check")
        await runner.drain()
        await runner.stop()
        return [ids, jobs]

    ids, jobs = asyncio.run(first())
    assert ids == ["playbook:hourly-check"] and jobs[0]["next_run_time"].endswith(":00:00+00:00")
    store2 = SQLiteJobStore(tmp_path / "jobs.db")
    assert [j[0] for j in store2._conn.execute("SELECT id FROM scheduled_jobs")] == ["playbook:hourly-check"]
    total, runs = runner.list_runs(playbook="hourly-check")
    assert total == 1 and runs[0].trigger == "schedule" and runs[0].status == "succeeded"
    with pytest.raises(Exception, match="not started by hand"):
        asyncio.run(runner.start("hourly-check", actor="u"))


def test_library_triggers_name_real_rules():
    """Every exact rule id a library playbook triggers on exists in our rule pack (or is a
    network/YARA detector id), so a renamed rule cannot silently disconnect a playbook."""
    import yaml

    rules_dir = Path(__file__).resolve().parents[2] / "detections" / "rules"
    if not rules_dir.is_dir():
        pytest.skip("detections/rules is not in this checkout")
    known = set()
    for f in rules_dir.rglob("*.yml"):
        for doc in yaml.safe_load_all(f.read_text()):
            if isinstance(doc, dict) and isinstance(doc.get("id"), str):
                known.add(doc["id"])
    from detections.network.registry import SPECS  # the detector registry: one declaration per detector

    net_ids = set(SPECS)
    assert "net:port_scan" in net_ids
    for pb in load_folders([LIBRARY], ACTIONS).playbooks.values():
        for t in pb.alert_triggers:
            for rid in t.rule_id:
                if any(c in rid for c in "*?["):
                    continue
                assert rid in known or rid in net_ids, f"{pb.name}: rule id {rid} is not in detections/rules"
