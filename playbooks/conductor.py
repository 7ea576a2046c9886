"""Deciding, without doing: what a run does next, given the playbook and what happened so far.

The runner (:mod:`playbooks.runner`) asks these pure functions and then acts and records;
they never touch a store, an action or the clock, which is what makes a playbook
rehearsable: feed scripted step results in, check the decisions that come out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.playbooks import CorroborationSettings, Run, StepState
from playbooks.actions.base import Action
from playbooks.spec import Playbook, Step

__all__ = ["Decision", "after_failure", "step_context", "final_outcome", "DONE_STEP_STATUSES", "resume_index",
           "placeholder_output", "Evidence", "needs_corroboration", "corroborated"]

DONE_STEP_STATUSES = frozenset({"succeeded", "skipped", "would_run"})


@dataclass(frozen=True, slots=True)
class Decision:
    kind: str  # "retry" | "continue" | "abort"
    delay_s: float = 0.0


def after_failure(step: Step, attempts: int, *, retryable: bool = True) -> Decision:
    """A step failed on attempt ``attempts`` (1-based): retry it, go on, or end the run.
    Input and condition errors are not ``retryable``: the same inputs fail the same way."""
    if retryable and attempts <= step.on_error.retries:
        return Decision("retry", step.on_error.delay(attempts))
    return Decision("continue" if step.on_error.then == "continue" else "abort")


def placeholder_output(step: Step, outputs: dict[str, str]) -> dict[str, Any]:
    """Dry runs do not act, so later steps see ``<steps.NAME.output.KEY>`` where real output would be."""
    return {k: f"<steps.{step.name}.output.{k}>" for k in outputs}


def step_context(states: dict[str, StepState]) -> dict[str, Any]:
    """What ``steps.<name>`` means in expressions: status, output and error of each step so far."""
    return {name: {"status": s.status, "output": s.output or {}, "error": s.error or None, "attempts": s.attempts}
            for name, s in states.items()}


def resume_index(playbook: Playbook, run: Run) -> int:
    """Where a resumed or approved run continues: its current step, else the first step not done."""
    if run.current_step:
        try:
            return playbook.step(run.current_step).index
        except KeyError:
            pass
    done = {s.name for s in run.steps if s.status in DONE_STEP_STATUSES}
    for st in playbook.steps:
        if st.name not in done:
            return st.index
    return len(playbook.steps)


def final_outcome(run_steps: list[StepState]) -> tuple[str, str]:
    """Status and reason of a run whose steps all ran (none aborted it): a failed step that
    ``on_error: continue`` passed over makes it ``completed_with_failures``, never ``succeeded``."""
    failed = [s for s in run_steps if s.status == "failed"]
    if failed:
        names = ", ".join(f"{s.name} ({s.error[:120]})" for s in failed)
        return "completed_with_failures", f"completed with failures; failed steps passed over by on_error: continue: {names}"
    return "succeeded", "completed"


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the alert store says about the target of an automatic destructive step."""

    entity: str  # the alert entity looked up, e.g. "source_ip"
    value: str
    rules: frozenset[str] = frozenset()
    """Distinct rules whose alerts named the target within the window."""
    observed_by: str | None = None
    """Rule id of a network-observed alert (our own capture, not a log line) naming it."""


def needs_corroboration(step: Step, action: Action, run: Run, settings: CorroborationSettings) -> bool:
    """True when an automatic step would act on a target that came from an alert's content.

    Only runs started by an alert: a person who starts or approves a run has vouched for it.
    Only destructive actions that declare their ``target``; only steps without a role gate
    (an ``auto`` approval), since a role gate already waits for a person."""
    return (settings.enabled and run.trigger == "alert" and not run.dry_run and action.destructive
            and action.target is not None and not step.needs_approval)


def corroborated(evidence: Evidence, settings: CorroborationSettings) -> bool:
    """Enough evidence to act unattended: one network-observed detection, or alerts of at
    least ``min_rules`` distinct rules naming the target."""
    return evidence.observed_by is not None or len(evidence.rules) >= settings.min_rules
