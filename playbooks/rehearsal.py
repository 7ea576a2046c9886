"""Rehearsing a playbook: the real runner, store and conductor, with scripted action results.

Like Orquesta's rehearsals: instead of blocking an address or sending mail, each step
gets the result a script says (an output mapping, an exception, or a pause to exercise
timeouts), and the test checks the sequence of steps and statuses that came out. The
script also records what each step was called with, so a test sees the resolved inputs.

Example::

    script = Script({"block": [ActionError("nft down"), {"ip": "10.0.0.5"}], "notify": [{}], "case": [{"case_id": 1}]})
    runner = Runner(playbooks, store, ACTIONS, ctx, settings=s, execute=script)
    run = await runner.start("camera-bruteforce", alert_id=1, actor="test")
    assert script.sequence() == ["block", "block", "notify", "case"]
"""
from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from playbooks.actions.base import Action, ActionContext

__all__ = ["Script", "Pause"]


@dataclass(frozen=True, slots=True)
class Pause:
    """A scripted result that takes ``seconds`` (then returns ``output``): for timeout tests."""

    seconds: float
    output: Mapping[str, Any] | None = None


class Script:
    """An executor that answers each call of step NAME with the next scripted result."""

    def __init__(self, results: Mapping[str, Sequence[Any]]):
        self._results = {k: list(v) for k, v in results.items()}
        self._lock = threading.Lock()
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, action: Action, ctx: ActionContext, params: dict[str, Any], step_name: str) -> dict[str, Any]:
        with self._lock:
            self.calls.append((step_name, action.name, dict(params)))
            queue = self._results.get(step_name)
            if not queue:
                raise AssertionError(f"rehearsal: no scripted result left for step {step_name!r}")
            result = queue.pop(0)
        if isinstance(result, Pause):
            time.sleep(result.seconds)
            return dict(result.output or {})
        if isinstance(result, BaseException):
            raise result
        return dict(result)

    def sequence(self) -> list[str]:
        return [c[0] for c in self.calls]

    def inputs(self, step_name: str) -> list[dict[str, Any]]:
        return [c[2] for c in self.calls if c[0] == step_name]
