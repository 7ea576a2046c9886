"""The printed report as a list of titled blocks, in the reader's language.

PDF and HTML lay out the same :class:`Block` list, so both show the same figures with
the same labels; only the drawing differs. A section whose source is missing becomes a
``not available`` block, never an empty table that could pass for "zero".
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

from core.alerts import LEVELS, RESOLUTIONS, STATUSES
from core.assets import HEALTH_STATUSES
from reports.i18n import Translator

__all__ = ["Block", "build_blocks", "MAX_ROWS"]

MAX_ROWS = 100
"""Longest table printed; the JSON holds the rest."""


@dataclass(slots=True)
class Block:
    title: str
    kind: str  # "kv" | "table" | "bars" | "na" | "note"
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""
    bars: list[tuple[str, int]] = field(default_factory=list)


def _pct(n: int, total: int, tr: Translator) -> str:
    return f"{tr.number(round(100 * n / total, 1))} %" if total else "-"


def _change(before: Any, after: Any) -> str:
    def short(v: Any) -> str:
        if isinstance(v, dict):
            return ", ".join(f"{k}={v[k]}" for k in sorted(v) if k not in ("created_at", "last_used_at"))
        return "" if v is None else str(v)

    b, a = short(before), short(after)
    return f"{b} → {a}" if b else a


def _period(p: dict[str, Any], tr: Translator) -> str:
    """Whole local days print as days (``16/11/2026 – 22/11/2026``), other bounds as times."""
    s, e = tr.local(p["start"]), tr.local(p["end"])
    if (s.hour, s.minute, s.second, e.hour, e.minute, e.second) == (0,) * 6:
        return f"{tr.date(s)} – {tr.date(e - _dt.timedelta(days=1))}"
    return f"{tr.datetime(s)} – {tr.datetime(e)}"


def _na(title: str, tr: Translator) -> Block:
    return Block(title, "na", note=f"{tr('not_available')}: {tr('not_available_reason')}")


def build_blocks(d: dict[str, Any], tr: Translator) -> list[Block]:
    """Every section of the printed report, in order."""
    al, resp = d["alerts"], d["response"]
    audit = d["audit"]
    total = al["total"]
    blocks: list[Block] = []
    chain = (f"{tr('audit_ok')} ({tr.number(audit['entries'])} {tr('audit_entries')})" if audit["ok"]
             else f"{tr('audit_broken')}: {audit['reason']}")
    blocks.append(Block(tr("summary"), "kv", rows=[
        [tr("period"), _period(d["period"], tr)],
        [tr("timezone"), d["period"]["tz"]],
        [tr("generated_at"), tr.datetime(d["generated_at"])],
        [tr("generated_by"), d.get("generated_by") or "-"],
        [tr("audit_chain"), chain],
        [tr("audit_head"), f"{audit['head']} (#{audit['head_seq'] or '-'})"],
        [tr("alerts_total"), tr.number(total)],
        [tr("alerts_open"), tr.number(al["open"])],
        [tr("alerts_closed"), tr.number(al["closed"])],
        [tr("mtta"), tr.duration(resp["mtta_s"])],
        [tr("mttr"), tr.duration(resp["mttr_s"])],
    ]))
    blocks.append(Block(tr("alerts_per_day"), "bars", bars=[(tr.day(x["day"]), x["count"]) for x in al["per_day"]],
                        headers=[tr("day"), tr("count")],
                        rows=[[tr.day(x["day"]), tr.number(x["count"])] for x in al["per_day"]]))
    blocks.append(Block(tr("alerts_by_level"), "table", [tr("level"), tr("count"), tr("share")],
                        [[tr.level(lv), tr.number(al["by_level"].get(lv, 0)), _pct(al["by_level"].get(lv, 0), total, tr)]
                         for lv in reversed(LEVELS)]))
    blocks.append(Block(tr("alerts_by_status"), "table", [tr("status"), tr("count"), tr("share")],
                        [[tr.status(s), tr.number(al["by_status"].get(s, 0)), _pct(al["by_status"].get(s, 0), total, tr)]
                         for s in STATUSES]))
    closed = al["closed"]
    blocks.append(Block(tr("alerts_by_resolution"), "table", [tr("resolution"), tr("count"), tr("share")],
                        [[tr.resolution(r), tr.number(al["by_resolution"].get(r, 0)),
                          _pct(al["by_resolution"].get(r, 0), closed, tr)] for r in RESOLUTIONS]))
    blocks.append(Block(tr("alerts_by_center"), "table", [tr("center"), tr("count"), tr("share")],
                        [[tr.center(c["center"]) if c["center"] else tr("no_center"), tr.number(c["count"]),
                          _pct(c["count"], total, tr)]
                         for c in al["by_center"]]))
    blocks.append(Block(tr("alerts_by_rule"), "table", [tr("rule_id"), tr("rule"), tr("count")],
                        [[r["rule_id"], r["title"], tr.number(r["count"])] for r in al["by_rule"]]))
    blocks.append(Block(tr("response_times"), "table", [" ", tr("alerts_measured"), tr("mean")], [
        [tr("mtta"), tr.number(resp["mtta_n"]), tr.duration(resp["mtta_s"])],
        [tr("mttr"), tr.number(resp["mttr_n"]), tr.duration(resp["mttr_s"])],
        [tr("unaudited_closures"), tr.number(resp["unaudited_closures"]), ""],
    ], note=tr("response_note")))
    blocks.append(Block(tr("top_assets"), "table",
                        [tr("asset"), tr("center"), tr("risk"), tr("alerts"), tr("max_level")],
                        [[a["asset_id"] + (f" ({a['name']})" if a.get("name") else ""), tr.center(a["center"]) if a["center"] else tr("no_center"),
                          str(a["risk"]), tr.number(a["alerts"]), tr.level(a["max_level"])] for a in d["top_assets"]]))
    av = d["availability"]
    if av is None:
        blocks.append(_na(tr("availability"), tr))
    else:
        blocks.append(Block(tr("availability"), "table",
                            [tr("center"), tr("assets"), *[tr(s) for s in HEALTH_STATUSES], tr("silent_periods")],
                            [[tr.center(c["center"]), tr.number(c["assets"]), *[tr.number(c[s]) for s in HEALTH_STATUSES],
                              tr.number(c["silent_alerts"])] for c in av["centers"]]))
        silent_rows = [[tr.center(c["center"]), s["asset_id"] + (f" ({s['name']})" if s.get("name") else ""), tr.number(s["alerts"])]
                       for c in av["centers"] for s in c["silent_assets"]]
        if silent_rows:
            blocks.append(Block(tr("silent_assets"), "table", [tr("center"), tr("asset"), tr("alerts")], silent_rows))
    runs = d["playbook_runs"]
    if runs is None:
        blocks.append(_na(tr("playbook_runs"), tr))
    else:
        rows = []
        for r in runs["runs"][:MAX_ROWS]:
            acts = ", ".join(f"{s['action']} ({tr.step_status(s['status'])})" for s in r["steps"])
            rows.append([f"#{r['id']}", r["playbook"], tr.run_status(r["status"]), tr.trigger(r["trigger"]), r["actor"],
                         tr.datetime(r["created_at"]), acts or "-"])
        blocks.append(Block(f"{tr('playbook_runs')} ({tr.number(runs['total'])})", "table",
                            [tr("run"), tr("playbook"), tr("status"), tr("trigger"), tr("actor"), tr("started"),
                             tr("actions_taken")], rows))
        if runs["actions"]:
            blocks.append(Block(tr("actions_taken"), "table", [tr("action"), tr("count")],
                                [[k, tr.number(v)] for k, v in sorted(runs["actions"].items())]))
    for key in ("rule_changes", "account_changes"):
        items = d[key]
        blocks.append(Block(f"{tr(key)} ({tr.number(d[key + '_total'])})", "table", [tr("time"), tr("actor"), tr("action"), tr("target"), tr("change")],
                            [[tr.datetime(e["time"]), e["actor"], e["action"], e["target"],
                              _change(e["before"], e["after"])] for e in items[:MAX_ROWS]]))
    cov = d["coverage"]
    if cov is None:
        blocks.append(_na(tr("coverage"), tr))
    else:
        blocks.append(Block(f"{tr('coverage')} ({tr('rules_enabled')}: {tr.number(cov['rules_enabled'])}, "
                            f"{tr('techniques')}: {tr.number(len(cov['techniques']))})", "table",
                            [tr("tactic"), tr("rules"), tr("techniques")],
                            [[t["tactic"], tr.number(t["rules"]), ", ".join(t["techniques"]) or "-"]
                             for t in cov["tactics"]]))
    oc = d["open_cases"]
    blocks.append(Block(f"{tr('open_cases')} ({tr.number(oc['total'])})", "table",
                        [tr("case"), tr("title_col"), tr("status"), tr("severity"), tr("assignee"), tr("updated")],
                        [[f"#{c['id']}", c["title"], tr.status(c["status"]), tr.level(c["severity"]),
                          c["assignee"] or "-", tr.datetime(c["updated_at"])] for c in oc["cases"][:MAX_ROWS]]))
    blocks.append(Block("", "note", note=tr("integrity_note")))
    return blocks
