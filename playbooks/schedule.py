"""Scheduled playbooks: ``trigger: {schedule: {cron: "0 * * * *"}}`` or ``{interval_s: 3600}``.

APScheduler's asyncio scheduler with a persistent job store handed in by wiring
(``storage.playbook_runs.SQLiteJobStore`` in ``<data>/playbooks.db``), so schedules
keep their next run time across restarts and a run missed while the server was down
fires once (coalesced) within the grace time. Jobs name the playbook only; the job
function finds the runner registered in this process.
"""
from __future__ import annotations

import logging
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from playbooks.spec import Playbook

__all__ = ["PlaybookScheduler", "fire", "trigger_for", "JOB_PREFIX"]

log = logging.getLogger("citysoc.playbooks")
JOB_PREFIX = "playbook:"
_runner: Any = None


def trigger_for(pb: Playbook) -> Any:
    sched = pb.schedule or {}
    if "cron" in sched:
        return CronTrigger.from_crontab(str(sched["cron"]), timezone=sched.get("timezone", "UTC"))
    return IntervalTrigger(seconds=float(sched["interval_s"]), timezone=sched.get("timezone", "UTC"))


async def fire(name: str) -> None:
    """The job function: start playbook ``name`` in the registered runner."""
    if _runner is None:
        log.error("scheduled playbook %s fired but no runner is registered in this process", name)
        return
    try:
        await _runner.start(name, actor="system:scheduler", trigger="schedule", wait=False)
    except Exception as exc:
        log.error("scheduled playbook %s not started: %s", name, exc)
        _runner._audit("system:scheduler", "playbook.run.refused", 0, details={"playbook": name, "reason": str(exc)})


class PlaybookScheduler:
    """Keeps one persistent job per scheduled playbook, in step with the loaded playbooks."""

    def __init__(self, runner: Any, jobstore: Any, *, misfire_grace_s: int = 300):
        self.runner = runner
        self.scheduler = AsyncIOScheduler(jobstores={"default": jobstore}, timezone="UTC")
        self.misfire_grace_s = misfire_grace_s

    def start(self) -> list[str]:
        """Start the scheduler; add, keep or drop jobs so they match the playbooks. Returns job ids."""
        global _runner
        _runner = self.runner
        self.scheduler.start()
        wanted = {JOB_PREFIX + p.name: p for p in self.runner.playbooks.values() if p.schedule}
        for job in self.scheduler.get_jobs():
            if job.id.startswith(JOB_PREFIX) and (job.id not in wanted or str(job.trigger) != str(trigger_for(wanted[job.id]))):
                job.remove()
        existing = {j.id for j in self.scheduler.get_jobs()}
        for jid, pb in wanted.items():
            if jid not in existing:
                self.scheduler.add_job(fire, trigger_for(pb), id=jid, name=pb.name, args=[pb.name],
                                       coalesce=True, max_instances=1, misfire_grace_time=self.misfire_grace_s)
        return sorted(wanted)

    def jobs(self) -> list[dict[str, Any]]:
        return [{"id": j.id, "playbook": j.name, "next_run_time": j.next_run_time.isoformat() if j.next_run_time else None,
                 "trigger": str(j.trigger)} for j in self.scheduler.get_jobs()]

    def shutdown(self) -> None:
        global _runner
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if _runner is self.runner:
            _runner = None
