"""The runner: starts runs, walks their steps, records every move, calls actions.

It implements :class:`core.playbooks.PlaybookRunner`. Decisions come from
:mod:`playbooks.conductor`; acting is one call, ``execute(action, ctx, params)``,
which is :func:`real_execute` in production and a scripted stand-in in rehearsal tests.

Guarantees:

* **nothing hangs**: every step runs under a timeout (the step's, else the default);
  an approval gate does not hold a task open: the run parks in ``awaiting_approval``
  and whoever approves continues it; unanswered gates expire to ``failed``;
* **every move is recorded**: each step state goes to the :class:`RunStore` as it
  changes, and each run, step, approval and rejection to the audit log;
* **idempotent**: a real run with the key of an earlier run returns that run;
* **bounded**: at most ``max_concurrent_runs`` runs act at once; others wait queued;
* **four eyes** (``playbooks.four_eyes``): the approver of a gate is not who started the run;
* **told**: every status change goes to ``run_listeners`` (the console's live stream), and a
  run that starts waiting for approval notifies the on-duty channel (``playbooks.on_duty``:
  e-mail, webhooks) in the background, never failing or delaying the run.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core.alerts import Alert, AlertChange, AlertFilter, AlertStore
from core.audit import AuditLog
from core.auth import role_allows
from core.events import get_field, to_utc_iso, utc_now_iso
from core.messages import Message
from core.playbooks import (
    FINAL_RUN_STATUSES, Approval, ApprovalDenied, FourEyesDenied, PlaybookInfo, PlaybookInputError, PlaybookNotFound,
    PlaybookSettings, Run, RunLimit, RunStateError, RunStore, StepState,
)
from playbooks.actions.base import PARAM_TYPES, Action, ActionContext, validate_params
from playbooks.conductor import (
    DONE_STEP_STATUSES, Evidence, after_failure, corroborated, final_outcome, needs_corroboration, placeholder_output,
    resume_index, step_context,
)
from playbooks.expressions import ExpressionError
from playbooks.spec import Playbook
from playbooks.templating import TemplateError
from playbooks.triggers import TriggerIndex

__all__ = ["Runner", "Executor", "real_execute", "playbook_info"]

log = logging.getLogger("citysoc.playbooks")

Executor = Callable[[Action, ActionContext, dict[str, Any], str], dict[str, Any]]
"""``(action, ctx, params, step_name) -> output``; raises on failure. Runs in a worker thread."""


def real_execute(action: Action, ctx: ActionContext, params: dict[str, Any], step_name: str) -> dict[str, Any]:
    out = action.run(ctx, **params)
    if not isinstance(out, dict):
        raise TypeError(f"action {action.name} returned {type(out).__name__}, not a mapping")
    return out


def _iso_in(seconds: float) -> str:
    return to_utc_iso(_dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=seconds))


def playbook_info(pb: Playbook) -> PlaybookInfo:
    trig: dict[str, Any] = {"manual": pb.manual}
    if pb.alert_triggers:
        trig["alert"] = [{k: v for k, v in (("rule_id", a.rule_id), ("tags", a.tags), ("level", a.level),
                                            ("min_level", a.min_level), ("center", a.center),
                                            ("asset_type", a.asset_type)) if v} for a in pb.alert_triggers]
    if pb.schedule:
        trig["schedule"] = dict(pb.schedule)
    return PlaybookInfo(
        name=pb.name, title=pb.title, description=pb.description, source=pb.source, triggers=trig,
        title_vi=pb.title_vi, description_vi=pb.description_vi,
        inputs={k: {"type": v.type, "required": v.required, "doc": v.doc} for k, v in pb.inputs.items()},
        steps=[{"name": s.name, "action": s.action, "destructive": s.destructive,
                "approval": ({"role": s.approval.role} if s.approval and s.approval.role
                             else {"auto": s.approval.auto} if s.approval else None),
                "timeout": s.timeout, "on_error": s.on_error.then, "retries": s.on_error.retries,
                "if": s.if_.source if s.if_ else None} for s in pb.steps])


def _role(role: str) -> str:
    """A role named in a message: its catalog label where the catalog has one."""
    try:
        return Message(f"role.{role}")
    except KeyError:
        return role


class Runner:
    """Example::

        runner = Runner(catalog.playbooks, SQLiteRunStore(db), ACTIONS, ActionContext(settings, data_dir),
                        audit=soc.audit, alerts=soc.alerts, settings=settings)
        run = await runner.start("camera-bruteforce", alert_id=7, actor="user:alice")
    """

    def __init__(self, playbooks: Mapping[str, Playbook], store: RunStore, actions: Mapping[str, Action],
                 ctx: ActionContext, *, settings: PlaybookSettings, audit: AuditLog | None = None,
                 alerts: AlertStore | None = None, execute: Executor = real_execute, jobstore: Any = None,
                 run_listeners: Sequence[Callable[[Run, str], None]] = ()):
        self.playbooks = dict(playbooks)
        self._triggers: TriggerIndex | None = None
        self._triggers_of: tuple[int, ...] = ()
        self.store = store
        self.actions = dict(actions)
        self.ctx = ctx
        self.settings = settings
        self.audit = audit
        self.alerts = alerts
        self.execute = execute
        self._sem: asyncio.Semaphore | None = None
        self._sem_loop: asyncio.AbstractEventLoop | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self.jobstore: Any = jobstore
        """APScheduler job store for scheduled playbooks (wiring hands in the persistent one)."""
        self.scheduler: Any = None
        self.on_action_start: Callable[[int, str], None] | None = None
        """Hook (benchmarks): called with (run id, step name) right before each real action call."""
        self.counters: dict[str, int] = {"runs_refused_rate_limit": 0, "steps_held_uncorroborated": 0}
        """Automatic responses held back by the guards (rate limits, corroboration), this process."""
        self.run_listeners: list[Callable[[Run, str], None]] = list(run_listeners)
        """Called on the event loop with (run, event) after each status change; event is
        ``run.updated`` or ``run.awaiting_approval`` (wiring: the console's SSE stream)."""

    # --- what the API and CLI call --------------------------------------------------------

    def list_playbooks(self) -> list[PlaybookInfo]:
        return [playbook_info(p) for p in sorted(self.playbooks.values(), key=lambda p: p.name)]

    def _playbook(self, name: str) -> Playbook:
        pb = self.playbooks.get(name)
        if pb is None:
            raise PlaybookNotFound(f"no playbook {name!r}; loaded: {', '.join(sorted(self.playbooks)) or 'none'}")
        return pb

    def get_playbook(self, name: str) -> PlaybookInfo:
        return playbook_info(self._playbook(name))

    def get_run(self, run_id: int) -> Run:
        return self.store.get_run(run_id)

    def list_runs(self, *, playbook: str | None = None, status: str | None = None, alert_id: int | None = None,
                  limit: int = 50, offset: int = 0) -> tuple[int, list[Run]]:
        return self.store.list_runs(playbook=playbook, status=status, alert_id=alert_id, limit=limit, offset=offset)

    async def start(self, name: str, *, actor: str, alert_id: int | None = None, inputs: dict[str, Any] | None = None,
                    dry_run: bool = False, wait: bool = True, trigger: str = "manual",
                    alert: Alert | None = None, parent_run_id: int | None = None,
                    use_idempotency: bool = True) -> Run:
        pb = self._playbook(name)
        if trigger == "manual" and not pb.manual:
            raise RunStateError(f"playbook {name!r} is not started by hand (trigger.manual: false)")
        if alert is None and alert_id is not None:
            if self.alerts is None:
                raise PlaybookInputError("no alert store is wired: cannot run against an alert")
            alert = await asyncio.to_thread(self.alerts.get, alert_id)
        alert_doc = alert.to_dict() if alert is not None else None
        base = {"alert": alert_doc, "run": {"playbook": pb.name, "actor": actor, "dry_run": dry_run},
                "trigger": {"kind": trigger}, "env": {}}
        resolved = self._resolve_inputs(pb, inputs or {}, base)
        key = None
        if use_idempotency and not dry_run:
            if pb.idempotency_key is not None:
                try:
                    k = pb.idempotency_key.render({**base, "inputs": resolved})
                except TemplateError as exc:
                    raise PlaybookInputError(f"idempotency_key: {exc}") from None
                key = None if k in (None, "") else str(k)
            elif alert is not None:
                key = f"alert:{alert.id}"
        run = Run(id=0, playbook=pb.name, status="queued", trigger=trigger, actor=actor, inputs=resolved,
                  alert_id=alert.id if alert is not None else None, rule_id=alert.rule_id if alert is not None else None,
                  dry_run=dry_run, idempotency_key=key, created_at=utc_now_iso(), parent_run_id=parent_run_id,
                  steps=[StepState(index=s.index, name=s.name, action=s.action, destructive=s.destructive,
                                   approval_role=s.approval.role if s.approval else None) for s in pb.steps])
        run, created = await asyncio.to_thread(self.store.create_run, run, limits=self._limits(run))
        if not created:
            self._audit(actor, "playbook.run.duplicate", run.id,
                        details={"playbook": pb.name, "idempotency_key": key, "trigger": trigger})
            return run
        if run.status == "refused":
            self.counters["runs_refused_rate_limit"] += 1
            log.warning("run %s of %s refused: %s", run.id, pb.name, run.reason)
            self._audit(actor, "playbook.run.refused", run.id,
                        details={"playbook": pb.name, "alert_id": run.alert_id, "rule_id": run.rule_id,
                                 "reason": run.reason, "inputs": resolved})
            return run
        self._audit(actor, "playbook.run.start", run.id,
                    details={"playbook": pb.name, "trigger": trigger, "alert_id": run.alert_id, "dry_run": dry_run,
                             "inputs": resolved, "idempotency_key": key, "parent_run_id": parent_run_id})
        return await self._launch(pb, run.id, "queued", 0, alert_doc, wait)

    async def approve(self, run_id: int, *, actor: str, role: str, comment: str = "", wait: bool = True) -> Run:
        run = await asyncio.to_thread(self.store.get_run, run_id)
        pb = self._playbook(run.playbook)
        st = self._gate(run, role)
        if self.settings.four_eyes and actor == run.actor:
            self._audit(actor, "playbook.approve.refused", run_id,
                        details={"playbook": run.playbook, "step": st.name, "reason": "four_eyes"})
            raise FourEyesDenied(f"four eyes: {actor} started run {run_id} and cannot also approve its step "
                                 f"{st.name!r}; another {st.approval_role or 'responder'} (or an admin) must "
                                 "approve it (setting playbooks.four_eyes)")
        if run.approval_expires_at and run.approval_expires_at < utc_now_iso():
            await self.expire_approvals()
            raise RunStateError(f"the approval of step {st.name!r} expired at {run.approval_expires_at}; "
                                f"resume run {run_id} to ask again")
        now = utc_now_iso()
        st.approved_by, st.approved_at = actor, now
        await asyncio.to_thread(self.store.save_step, run_id, st)
        await asyncio.to_thread(self.store.add_approval, run_id, Approval(st.name, "approved", actor, role, now, comment))
        self._audit(actor, "playbook.approve", run_id,
                    details={"playbook": run.playbook, "step": st.name, "action": st.action, "inputs": st.inputs,
                             "role": role, "comment": comment})
        return await self._launch(pb, run_id, "awaiting_approval", pb.step(st.name).index, await self._alert_doc(run),
                                  wait)

    async def reject(self, run_id: int, *, actor: str, role: str, comment: str = "") -> Run:
        run = await asyncio.to_thread(self.store.get_run, run_id)
        st = self._gate(run, role)
        now = utc_now_iso()
        st.status, st.ended_at = "rejected", now
        st.error = f"rejected by {actor}" + (f": {comment}" if comment else "")
        reason = f"step {st.name!r} ({st.action}) was rejected by {actor}" + (f": {comment}" if comment else "")
        if not await asyncio.to_thread(self.store.set_status, run_id, "awaiting_approval", "rejected",
                                       reason=reason, ended_at=now):
            raise RunStateError(f"run {run_id} is no longer awaiting approval")
        await asyncio.to_thread(self.store.save_step, run_id, st)
        await asyncio.to_thread(self.store.add_approval, run_id, Approval(st.name, "rejected", actor, role, now, comment))
        self._audit(actor, "playbook.reject", run_id, details={"playbook": run.playbook, "step": st.name,
                                                               "action": st.action, "comment": comment})
        self._audit(actor, "playbook.run.end", run_id, after={"status": "rejected"}, details={"reason": reason})
        return await self._changed(run_id)

    async def cancel(self, run_id: int, *, actor: str, comment: str = "") -> Run:
        """Withdraw a run that waits (queued or for an approval); a running step is never cut off."""
        run = await asyncio.to_thread(self.store.get_run, run_id)
        if run.status not in ("queued", "awaiting_approval"):
            raise RunStateError(f"only queued runs or runs awaiting approval are cancelled; run {run_id} is {run.status}")
        reason = f"cancelled by {actor}" + (f": {comment}" if comment else "")
        if not await asyncio.to_thread(self.store.set_status, run_id, run.status, "cancelled", reason=reason,
                                       ended_at=utc_now_iso(), current_step=run.current_step):
            raise RunStateError(f"run {run_id} changed state meanwhile; look at it again")
        self._audit(actor, "playbook.run.end", run_id, after={"status": "cancelled"}, details={"reason": reason})
        return await self._changed(run_id)

    async def resume(self, run_id: int, *, actor: str, wait: bool = True) -> Run:
        run = await asyncio.to_thread(self.store.get_run, run_id)
        if run.status != "failed":
            raise RunStateError(f"only failed runs are resumed; run {run_id} is {run.status}"
                                + ("; use rerun to run it again" if run.status in FINAL_RUN_STATUSES else ""))
        if run.dry_run:
            raise RunStateError(f"run {run_id} is a dry run: start a new one (rerun) instead of resuming it")
        pb = self._playbook(run.playbook)
        idx = resume_index(pb, run)
        self._audit(actor, "playbook.run.resume", run_id,
                    details={"playbook": run.playbook, "from_step": pb.steps[idx].name if idx < len(pb.steps) else None})
        return await self._launch(pb, run_id, "failed", idx, await self._alert_doc(run), wait)

    async def rerun(self, run_id: int, *, actor: str, dry_run: bool = False, wait: bool = True) -> Run:
        old = await asyncio.to_thread(self.store.get_run, run_id)
        return await self.start(old.playbook, actor=actor, alert_id=old.alert_id, inputs=dict(old.inputs),
                                dry_run=dry_run, wait=wait, trigger="rerun", parent_run_id=old.id,
                                use_idempotency=False)

    # --- alerts, background work ------------------------------------------------------------

    def matching(self, alert: Alert) -> list[Playbook]:
        """The playbooks a new ``alert`` starts, sorted by name, from the trigger index
        (built again only when ``self.playbooks`` holds other playbooks)."""
        current = tuple(map(id, self.playbooks.values()))
        if self._triggers is None or current != self._triggers_of:
            self._triggers = TriggerIndex(self.playbooks.values())
            self._triggers_of = current
        return self._triggers.matching(alert)

    async def on_alerts(self, changes: Sequence[AlertChange]) -> list[Run]:
        """Start every playbook whose alert trigger matches a *new* alert (grown ones are the same incident)."""
        runs: list[Run] = []
        for ch in changes:
            if not ch.created:
                continue
            for pb in self.matching(ch.alert):
                try:
                    runs.append(await self.start(pb.name, actor="system:playbooks", alert=ch.alert, trigger="alert",
                                                 wait=False))
                except Exception as exc:  # one playbook's bad inputs must not stop the others
                    log.error("playbook %s not started for alert %s: %s", pb.name, ch.alert.id, exc)
                    self._audit("system:playbooks", "playbook.run.refused", 0,
                                details={"playbook": pb.name, "alert_id": ch.alert.id, "reason": str(exc)})
        return runs

    def alert_listener(self, loop: asyncio.AbstractEventLoop) -> Callable[[list[AlertChange]], None]:
        """An ``AlertRecorder`` listener: called in the pipeline's thread, hands off to ``loop``."""
        self._loop = loop

        def listener(changes: list[AlertChange]) -> None:
            if any(c.created for c in changes):
                loop.call_soon_threadsafe(lambda: self._track(asyncio.ensure_future(self.on_alerts(changes))))

        return listener

    async def expire_approvals(self) -> list[int]:
        expired = await asyncio.to_thread(self.store.expired_approvals, utc_now_iso())
        done = []
        for rid in expired:
            run = await asyncio.to_thread(self.store.get_run, rid)
            reason = (f"no decision on step {run.current_step!r} before {run.approval_expires_at}; "
                      f"resume run {rid} to ask again")
            if await asyncio.to_thread(self.store.set_status, rid, "awaiting_approval", "failed", reason=reason,
                                       ended_at=utc_now_iso(), current_step=run.current_step):
                self._audit("system:playbooks", "playbook.run.end", rid, after={"status": "failed"},
                            details={"reason": reason})
                done.append(rid)
                await self._changed(rid)
        return done

    async def recover(self) -> list[int]:
        """At server start: runs left ``running``/``queued`` by a process that stopped end ``failed``."""
        ended = []
        for rid in await asyncio.to_thread(self.store.running_runs):
            run = await asyncio.to_thread(self.store.get_run, rid)
            where = f"during step {run.current_step!r}" if run.current_step else "before its first step"
            reason = f"interrupted: the process running it stopped {where}; resume run {rid} to continue"
            if await asyncio.to_thread(self.store.set_status, rid, run.status, "failed", reason=reason,
                                       ended_at=utc_now_iso(), current_step=run.current_step):
                self._audit("system:playbooks", "playbook.run.end", rid, after={"status": "failed"},
                            details={"reason": reason})
                ended.append(rid)
        return ended

    def start_background(self, interval_s: float = 30.0) -> None:
        async def sweep() -> None:
            while True:
                try:
                    await self.expire_approvals()
                except Exception:
                    log.exception("approval expiry sweep failed; will retry")
                await asyncio.sleep(interval_s)

        self._loop = asyncio.get_running_loop()
        self._sweeper = asyncio.create_task(sweep(), name="playbook-approvals")

    async def start_schedules(self) -> list[str]:
        """Start the scheduler for playbooks with ``trigger.schedule`` (needs a running loop)."""
        if not any(p.schedule for p in self.playbooks.values()):
            return []
        from apscheduler.jobstores.memory import MemoryJobStore

        from playbooks.schedule import PlaybookScheduler

        self.scheduler = PlaybookScheduler(self, self.jobstore if self.jobstore is not None else MemoryJobStore())
        return self.scheduler.start()

    async def stop(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 -- bounds the wait for running steps, callers pass it
        if self.scheduler is not None:
            self.scheduler.shutdown()
        if self._sweeper:
            self._sweeper.cancel()
        tasks = list(self._tasks)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def drain(self) -> None:
        """Wait until every run started so far has ended or parked (tests, CLI)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- internals -------------------------------------------------------------------------

    async def _changed(self, run_id: int, event: str = "run.updated") -> Run:
        """Tell the listeners (the console) the run moved; returns the stored run."""
        run = await asyncio.to_thread(self.store.get_run, run_id)
        for listener in list(self.run_listeners):
            try:
                listener(run, event)
            except Exception:  # a listener must never break a run
                log.exception("run listener failed for run %s", run_id)
        return run

    async def _notify_on_duty(self, run: Run) -> None:
        """E-mail and post to the on-duty channel that ``run`` waits for an approval."""
        od = self.settings.on_duty
        if not od.email_to and not od.webhooks:
            return
        st = run.step(run.current_step) if run.current_step else None
        step = st.name if st else "?"
        link = (od.console_url.rstrip("/") + "/playbooks") if od.console_url else ""
        subject = (f"citysoc: lần chạy #{run.id} ({run.playbook}) chờ phê duyệt bước {step} / "
                   f"run #{run.id} waits for approval of step {step}")
        lines = [f"Kịch bản / playbook: {run.playbook}", f"Lần chạy / run: #{run.id}",
                 f"Bước / step: {step} ({st.action if st else ''})", f"Người khởi chạy / started by: {run.actor}",
                 f"Cần vai trò / approver role: {(st.approval_role if st else None) or 'responder'}",
                 f"Hết hạn / expires: {run.approval_expires_at or ''}", f"Lý do / reason: {run.reason}"]
        if st is not None and st.inputs:
            lines.append("Tham số / inputs: " + ", ".join(f"{k}={v}" for k, v in st.inputs.items()))
        if link:
            lines.append(f"Phê duyệt tại / approve at: {link}")
        text = "\n".join(lines)
        ctx = self.ctx.for_step(run_id=run.id, playbook=run.playbook, step=f"on_duty:{step}",
                                actor="system:playbooks", timeout=od.timeout_s)
        sends: list[tuple[str, Callable[[], dict[str, Any]]]] = []
        email, hook = self.actions.get("notify_email"), self.actions.get("notify_webhook")
        if od.email_to and email is not None:
            sends.append((f"email:{','.join(od.email_to)}",
                          lambda: email.run(ctx, subject=subject, body=text, to=list(od.email_to))))
        for name in od.webhooks if hook is not None else []:
            sends.append((f"webhook:{name}", lambda name=name: hook.run(  # type: ignore[union-attr]
                ctx, target=name, text=subject + "\n" + text, fields={"run_id": run.id, "step": step})))
        for channel, send in sends:
            try:
                await asyncio.wait_for(asyncio.to_thread(send), timeout=od.timeout_s + 1)
                self._audit("system:playbooks", "playbook.notify", run.id,
                            details={"channel": channel, "event": "awaiting_approval", "step": step})
            except Exception as exc:
                err = str(exc) or type(exc).__name__
                log.warning("on-duty notification of run %s via %s failed: %s", run.id, channel, err)
                try:
                    self._audit("system:playbooks", "playbook.notify.failed", run.id,
                                details={"channel": channel, "event": "awaiting_approval", "step": step,
                                         "error": err[:500]})
                except Exception:
                    pass  # already logged by _audit

    def _track(self, task: asyncio.Future[Any]) -> None:
        self._tasks.add(task)  # type: ignore[arg-type]
        task.add_done_callback(self._tasks.discard)  # type: ignore[arg-type]

    def _audit(self, actor: str, action: str, run_id: int, *, before: Any = None, after: Any = None,
               details: dict[str, Any] | None = None) -> None:
        if self.audit is None:
            return
        try:
            self.audit.append(actor, action, f"playbook_run:{run_id}", before=before, after=after, details=details)
        except Exception:
            log.exception("audit append failed for %s on run %s", action, run_id)
            raise

    async def _alert_doc(self, run: Run) -> dict[str, Any] | None:
        if run.alert_id is None or self.alerts is None:
            return None
        a = await asyncio.to_thread(self.alerts.get, run.alert_id)
        return a.to_dict()

    def _gate(self, run: Run, role: str) -> StepState:
        if run.status != "awaiting_approval" or not run.current_step:
            raise RunStateError(f"run {run.id} is {run.status}, not awaiting approval")
        st = run.step(run.current_step)
        need = st.approval_role or "responder"
        if not role_allows(role, "playbooks:approve") or role not in (need, "admin"):
            raise ApprovalDenied(f"step {st.name!r} of run {run.id} needs approval by role {need!r} (or admin); "
                                 f"you are {role!r}")
        return st

    def _resolve_inputs(self, pb: Playbook, given: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
        problems = [f"unknown input {k!r} (declared: {', '.join(pb.inputs) or 'none'})" for k in given
                    if k not in pb.inputs]
        out: dict[str, Any] = {}
        for name, spec in pb.inputs.items():
            val = given.get(name)
            if val is None and spec.default is not None:
                try:
                    val = spec.default.render(base)
                except TemplateError as exc:
                    problems.append(f"input {name!r}: default {exc}")
                    continue
            if val is None or val == "":
                if spec.required:
                    problems.append(f"input {name!r} ({spec.type}) is required"
                                    + (" and the alert does not provide it" if spec.default is not None else ""))
                out[name] = None
                continue
            try:
                out[name] = PARAM_TYPES[spec.type](val)
            except (ValueError, TypeError) as exc:
                problems.append(f"input {name!r}: {exc}")
        if problems:
            raise PlaybookInputError(f"playbook {pb.name}: " + "; ".join(problems))
        return out

    def _limits(self, run: Run) -> list[RunLimit]:
        """The rate limits an automatic run must fit in (none for runs a person started)."""
        if run.trigger != "alert" or run.dry_run:
            return []
        rl, out = self.settings.rate_limits, []
        if rl.per_playbook is not None:
            out.append(RunLimit(run.playbook, rl.per_playbook.max_runs, _iso_in(-rl.per_playbook.window_s),
                                rl.per_playbook.window_s))
        if rl.per_rule is not None and run.rule_id:
            out.append(RunLimit(run.playbook, rl.per_rule.max_runs, _iso_in(-rl.per_rule.window_s),
                                rl.per_rule.window_s, rule_id=run.rule_id))
        return out

    def _evidence(self, action: Action, inputs: dict[str, Any], run: Run) -> Evidence:
        """Ask the alert store who else names this target (in a worker thread). Windows use the
        server's clock (alerts' ``updated_at``), never event times, which log senders write."""
        assert action.target is not None
        inp, entity = action.target
        value = str(inputs.get(inp) or "")
        if not value or self.alerts is None:
            return Evidence(entity, value)
        cor = self.settings.corroboration
        since = _iso_in(-cor.window_s)
        _total, page = self.alerts.list(AlertFilter(**{entity: value}, sort="-last_seen", limit=500,
                                                    count_up_to=None))
        recent = [a for a in page if a.updated_at >= since or a.id == run.alert_id]
        observed = None
        for a in recent:
            if a.engine in cor.observed_engines:
                full = self.alerts.get(a.id)
                if full.events and not any(get_field(e, "log.source.address") for e in full.events):
                    observed = a.rule_id
                    break
        return Evidence(entity, value, frozenset(a.rule_id for a in recent), observed)

    def _semaphore(self) -> asyncio.Semaphore:
        # one per event loop: the CLI and tests drive one runner from successive asyncio.run() calls
        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem_loop is not loop:
            self._sem, self._sem_loop = asyncio.Semaphore(self.settings.max_concurrent_runs), loop
        return self._sem

    async def _launch(self, pb: Playbook, run_id: int, expected: str, start: int, alert_doc: dict[str, Any] | None,
                      wait: bool) -> Run:
        task = asyncio.ensure_future(self._drive(pb, run_id, expected, start, alert_doc))
        self._track(task)
        if wait:
            await asyncio.shield(task)
        return await asyncio.to_thread(self.store.get_run, run_id)

    async def _drive(self, pb: Playbook, run_id: int, expected: str, start: int, alert_doc: dict[str, Any] | None) -> None:
        async with self._semaphore():
            now = utc_now_iso()
            ok = await asyncio.to_thread(self.store.set_status, run_id, expected, "running",
                                         started_at=now if expected == "queued" else None, reason="running")
            if not ok:
                return  # someone else moved it first (another process resumed or approved it)
            run = await self._changed(run_id)
            try:
                await self._walk(pb, run, start, alert_doc)
            except asyncio.CancelledError:
                await self._end(run, "failed", f"interrupted: the runner stopped during step {run.current_step!r}; "
                                               f"resume run {run_id} to continue", run.current_step)
                raise
            except Exception as exc:
                log.exception("run %s of %s failed inside the runner", run_id, pb.name)
                try:
                    await self._end(run, "failed", f"internal error in the runner: {exc}; resume run {run_id} "
                                                   "once fixed", run.current_step)
                except Exception:  # the store or audit log itself is down: recover() ends the run at next start
                    log.exception("run %s could not be marked failed", run_id)

    async def _end(self, run: Run, status: str, reason: str, current_step: str | None) -> None:
        if await asyncio.to_thread(self.store.set_status, run.id, "running", status, reason=reason,
                                   ended_at=utc_now_iso(), current_step=current_step):
            self._audit(run.actor, "playbook.run.end", run.id, after={"status": status},
                        details={"playbook": run.playbook, "reason": reason, "dry_run": run.dry_run})
            await self._changed(run.id)

    async def _save(self, run_id: int, st: StepState) -> None:
        await asyncio.to_thread(self.store.save_step, run_id, st)

    async def _walk(self, pb: Playbook, run: Run, start: int, alert_doc: dict[str, Any] | None) -> None:
        states = {s.name: s for s in run.steps}
        ctx_base = {"alert": alert_doc, "inputs": run.inputs, "env": {},
                    "run": {"id": run.id, "playbook": pb.name, "actor": run.actor, "dry_run": run.dry_run},
                    "trigger": {"kind": run.trigger}}
        for step in pb.steps[start:]:
            st = states.setdefault(step.name, StepState(index=step.index, name=step.name, action=step.action,
                                                        destructive=step.destructive))
            if st.status in DONE_STEP_STATUSES:
                continue
            run.current_step = step.name
            ctx = {**ctx_base, "steps": step_context({k: v for k, v in states.items() if k != step.name})}
            action = self.actions[step.action]
            st.error, st.output, st.would = "", None, ""
            # 1. the condition
            try:
                go = True if step.if_ is None else bool(step.if_.evaluate(ctx))
            except ExpressionError as exc:
                if await self._fail(run, step, st, f"condition failed: {exc}", retryable=False):
                    continue
                return
            if not go:
                st.status, st.ended_at = "skipped", utc_now_iso()
                st.would = Message("msg.step.skipped_condition", condition=repr(step.if_.source)) if step.if_ else ""
                await self._save(run.id, st)
                self._audit(run.actor, "playbook.step", run.id, after={"status": "skipped"},
                            details={"step": step.name, "action": step.action, "condition": step.if_.source if step.if_ else ""})
                continue
            # 2. the inputs (an approved step keeps exactly the inputs that were approved)
            if not st.approved_by:
                try:
                    st.inputs = validate_params(action, step.with_.render(ctx))
                except (TemplateError, PlaybookInputError) as exc:
                    if await self._fail(run, step, st, f"bad inputs: {exc}", retryable=False):
                        continue
                    return
            sctx = self.ctx.for_step(run_id=run.id, playbook=pb.name, step=step.name, actor=run.actor,
                                     timeout=step.timeout or self.settings.default_step_timeout_s)
            # 3. dry run: say what would happen, touch nothing
            if run.dry_run:
                try:
                    st.would = await asyncio.wait_for(asyncio.to_thread(action.describe, sctx, **st.inputs),
                                                      timeout=sctx.timeout)
                    st.status = "would_run"
                except Exception as exc:
                    st.would, st.status, st.error = Message("msg.step.would_fail", error=str(exc)), "failed", str(exc)
                if step.needs_approval:
                    st.would = Message("msg.step.after_approval", what=st.would,
                                       role=_role(step.approval.role))  # type: ignore[union-attr]
                st.output = placeholder_output(step, action.outputs)
                st.ended_at = utc_now_iso()
                await self._save(run.id, st)
                self._audit(run.actor, "playbook.step", run.id, after={"status": st.status},
                            details={"step": step.name, "action": step.action, "dry_run": True, "inputs": st.inputs,
                                     "would": st.would})
                continue
            # 4. the approval gate: the playbook's role gate, or ours when an automatic step's
            #    target (from an alert's content) is not corroborated by other evidence
            gate_role, evidence = (step.approval.role if step.needs_approval else None), None  # type: ignore[union-attr]
            if gate_role is None and not st.approved_by and needs_corroboration(step, action, run,
                                                                                self.settings.corroboration):
                evidence = await asyncio.to_thread(self._evidence, action, st.inputs, run)
                if not corroborated(evidence, self.settings.corroboration):
                    gate_role = self.settings.corroboration.approval_role
                    self.counters["steps_held_uncorroborated"] += 1
            if gate_role is not None and not st.approved_by:
                st.status, st.approval_role = "awaiting_approval", gate_role
                await self._save(run.id, st)
                ttl = (step.approval.timeout_s if step.approval else None) or self.settings.approval_timeout_s
                if evidence is not None:
                    reason: str = Message("msg.run.waits_uncorroborated", step=step.name, action=step.action,
                                          role=_role(gate_role), target=evidence.value, n=len(evidence.rules),
                                          needed=self.settings.corroboration.min_rules)
                else:
                    reason = Message("msg.run.waits", step=step.name, action=step.action, role=_role(gate_role))
                if await asyncio.to_thread(self.store.set_status, run.id, "running", "awaiting_approval", reason=reason,
                                           current_step=step.name, approval_expires_at=_iso_in(ttl)):
                    self._audit(run.actor, "playbook.step", run.id, after={"status": "awaiting_approval"},
                                details={"step": step.name, "action": step.action, "inputs": st.inputs,
                                         "approval_role": st.approval_role,
                                         **({"corroboration": {"entity": evidence.entity, "value": evidence.value,
                                                               "rules": sorted(evidence.rules),
                                                               "needed": self.settings.corroboration.min_rules}}
                                            if evidence is not None else {})})
                    parked = await self._changed(run.id, "run.awaiting_approval")
                    self._track(asyncio.ensure_future(self._notify_on_duty(parked)))
                return
            # 5. act, with retries
            if not await self._act(run, step, st, action, sctx):
                return
        status, reason = final_outcome([states[s.name] for s in pb.steps if s.name in states])
        if run.dry_run:
            failing = [f"{s.name} ({states[s.name].error[:160]})" for s in pb.steps
                       if s.name in states and states[s.name].status == "failed"]
            status, reason = (("failed", Message("msg.run.dry_would_fail", failing=", ".join(failing)))
                              if failing else (status, Message("msg.run.dry_done",
                                                               reason=Message("msg.run.completed")
                                                               if reason == "completed" else reason)))
        await self._end(run, status, reason, None)

    async def _act(self, run: Run, step: Any, st: StepState, action: Action, sctx: ActionContext) -> bool:
        """Run one step to success or its final failure; False when the run must stop."""
        st.attempts = 0
        while True:
            st.attempts += 1
            st.status, st.started_at, st.ended_at, st.error = "running", utc_now_iso(), "", ""
            await self._save(run.id, st)
            if self.on_action_start is not None:
                self.on_action_start(run.id, step.name)
            t0 = time.perf_counter()
            try:
                out = await asyncio.wait_for(asyncio.to_thread(self.execute, action, sctx, dict(st.inputs), step.name),
                                             timeout=sctx.timeout)
                err = None
            except TimeoutError:
                out, err = None, f"timed out after {sctx.timeout:g} s"
            except Exception as exc:
                first = exc.args[0] if len(exc.args) == 1 else None
                # an action's Message stays one (shown in the reader's language), else its text
                out, err = None, first if isinstance(first, Message) else (
                    f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc))
            st.duration_ms = round((time.perf_counter() - t0) * 1000, 3)
            st.ended_at = utc_now_iso()
            if err is None:
                st.status, st.output = "succeeded", out
                await self._save(run.id, st)
                self._audit(run.actor, "playbook.step", run.id, after={"status": "succeeded"},
                            details={"step": step.name, "action": step.action, "inputs": st.inputs, "output": out,
                                     "attempts": st.attempts, "duration_ms": st.duration_ms,
                                     "approved_by": st.approved_by,
                                     "auto_approval": step.approval.auto if step.approval else None})
                return True
            decision = after_failure(step, st.attempts)
            st.error = err
            self._audit(run.actor, "playbook.step.attempt", run.id, after={"status": "failed"},
                        details={"step": step.name, "action": step.action, "attempt": st.attempts, "error": err,
                                 "next": decision.kind})
            if decision.kind == "retry":
                await self._save(run.id, st)
                await asyncio.sleep(decision.delay_s)
                continue
            return await self._fail(run, step, st, err, retryable=False, already_tried=True)

    async def _fail(self, run: Run, step: Any, st: StepState, err: str, *, retryable: bool,
                    already_tried: bool = False) -> bool:
        """Record a failed step; True when the run goes on (on_error: continue)."""
        st.status, st.error, st.ended_at = "failed", err, utc_now_iso()
        await self._save(run.id, st)
        decision = after_failure(step, st.attempts if already_tried else 10**6, retryable=retryable)
        self._audit(run.actor, "playbook.step", run.id, after={"status": "failed"},
                    details={"step": step.name, "action": step.action, "inputs": st.inputs, "error": err,
                             "attempts": st.attempts, "on_error": decision.kind})
        if decision.kind == "continue":
            return True
        reason = (f"step {step.name!r} ({step.action}) failed"
                  + (f" after {st.attempts} attempt(s)" if st.attempts else "")
                  + f": {err}; fix the cause, then resume run {run.id}")
        await self._end(run, "failed", reason, step.name)
        return False
