"""Judge a demo run against its ground truth: for each scenario, was it detected, by
which rules, how long after its first malicious event (event time), and did its
playbook run. Also counts the alerts no scenario explains (false positives)."""
from __future__ import annotations

from dataclasses import dataclass, field

from rich.table import Table

from citysoc.demo.run import DemoRun

__all__ = ["Verdict", "judge", "verdict_table", "fmt_duration"]


@dataclass
class Verdict:
    id: str
    title: str
    detected: bool
    expected: list[str]
    fired: list[str]
    """Rule ids that fired on the scenario's events, expected ones first."""
    ttd_s: float | None
    expect_playbook: str | None
    playbooks: list[tuple[str, str]] = field(default_factory=list)

    @property
    def playbook_ok(self) -> bool:
        if self.expect_playbook is None:
            return True
        return any(name == self.expect_playbook and status == "succeeded" for name, status in self.playbooks)

    @property
    def ok(self) -> bool:
        return self.detected and self.playbook_ok


def judge(run: DemoRun) -> tuple[list[Verdict], dict[str, int]]:
    """(verdicts per scenario, detections per rule that belong to no scenario)."""
    out: list[Verdict] = []
    for s in run.world.scenarios:
        mine = [h for h in run.hits if s.id in h.scenarios]
        good = [h for h in mine if s.matches_rule(h.rule_id)]
        fired = sorted({h.rule_id for h in good}) + sorted({h.rule_id for h in mine} - {h.rule_id for h in good})
        ttd = min(h.at for h in good) - s.start if good else None
        out.append(Verdict(s.id, s.title, bool(good), s.expect_rules, fired, ttd, s.expect_playbook,
                           run.playbooks.get(s.id, [])))
    unexplained: dict[str, int] = {}
    for h in run.hits:
        if not h.scenarios:
            unexplained[h.rule_id] = unexplained.get(h.rule_id, 0) + 1
    return out, unexplained


def _expected(rule_id: str, expected: list[str]) -> bool:
    return any(rule_id == e or (e.endswith("*") and rule_id.startswith(e[:-1])) for e in expected)


def fmt_duration(s: float | None) -> str:
    if s is None:
        return "-"
    s = max(0.0, s)
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def verdict_table(verdicts: list[Verdict], titles: dict[str, str] | None = None) -> Table:
    titles = titles or {}
    t = Table(title="citysoc demo --check: injected scenarios", show_lines=True)
    for col in ("scenario", "detected", "by rule", "time to detect", "playbook"):
        t.add_column(col, overflow="fold")
    for v in verdicts:
        expected = [r for r in v.fired if _expected(r, v.expected)]
        rules = "\n".join(f"{'[green]' if r in expected else '[dim]'}{titles.get(r, r)}[/]"
                          + (f" [dim]({r})[/]" if r in titles else "")
                          for r in v.fired) or "[red]none[/] (expected " + ", ".join(v.expected) + ")"
        pbs = ", ".join(f"{n}: {st}" for n, st in v.playbooks)
        if v.expect_playbook is None:
            pb = f"[dim]{pbs or 'none expected'}[/]"
        else:
            pb = f"[{'green' if v.playbook_ok else 'red'}]{pbs or v.expect_playbook + ': did not run'}[/]"
        t.add_row(f"[bold]{v.id}[/]\n{v.title}", "[green]yes[/]" if v.detected else "[red]NO[/]", rules,
                  fmt_duration(v.ttd_s), pb)
    return t
