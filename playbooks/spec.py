"""Playbook files: the YAML format, loaded and validated all-or-nothing.

A file either becomes a :class:`Playbook` or yields a list of :class:`SpecError`, each
naming the file, the path inside the YAML (``steps[2].with.ip``) and its line. All
problems of a file are collected, not just the first; a file with any error is not
loaded at all, so nothing runs half a playbook.

Format (see ``playbooks/README.md`` for the whole reference)::

    name: camera-bruteforce
    title: Camera brute force -> block the source, notify, open a case
    trigger:
      alert: {tags: [citysoc.camera.bruteforce, attack.t1110], min_level: medium}
    inputs:
      source_ip: {type: ip, default: "{{ alert.entities.source_ip }}"}
    steps:
      - name: block
        action: block_ip
        with: {ip: "{{ inputs.source_ip }}", ttl_s: 3600}
        approval: {auto: "a camera brute force is blocked at once; the TTL undoes it"}
        on_error: {retry: 2, backoff_s: 1, then: abort}
        timeout: 20
      - name: notify
        action: notify_email
        if: "steps.block.status == 'succeeded'"
        with: {subject: "Blocked {{ inputs.source_ip }}", body: "..."}
"""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.alerts import LEVELS, Alert, level_number
from core.auth import ROLES
from core.events import get_field
from playbooks.actions.base import PARAM_TYPES, Action
from playbooks.expressions import Expression, ExpressionError, compile_expression
from playbooks.templating import Template, TemplateError, compile_template

__all__ = ["Playbook", "Step", "OnError", "StepApproval", "InputSpec", "AlertTrigger", "SpecError",
           "PlaybookLoadError", "load_playbook", "load_folders", "Catalog", "LIBRARY"]

LIBRARY = Path(__file__).parent / "library"
"""Our own playbooks, always loaded."""

_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
MAX_TIMEOUT_S = 600.0


@dataclass(slots=True)
class SpecError:
    file: str
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '(top)'}: {self.message}"


class PlaybookLoadError(ValueError):
    """One or more playbook files are invalid; ``errors`` holds every problem found."""

    def __init__(self, errors: list[SpecError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


@dataclass(slots=True)
class OnError:
    then: str = "abort"  # abort | continue
    retries: int = 0
    backoff_s: float = 1.0
    factor: float = 2.0
    max_backoff_s: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        return min(self.max_backoff_s, self.backoff_s * self.factor ** (attempt - 1))


@dataclass(slots=True)
class StepApproval:
    role: str | None = None
    """Role that must approve (``admin`` always may); None with ``auto`` set."""
    auto: str | None = None
    """Why a destructive step runs without a human (recorded with the run)."""
    timeout_s: float | None = None


@dataclass(slots=True)
class Step:
    index: int
    name: str
    action: str
    with_: Template
    if_: Expression | None
    on_error: OnError
    timeout: float | None
    approval: StepApproval | None
    destructive: bool
    needs: list[str] = field(default_factory=list)

    @property
    def needs_approval(self) -> bool:
        return self.approval is not None and self.approval.role is not None


@dataclass(slots=True)
class InputSpec:
    type: str
    required: bool
    default: Template | None
    doc: str = ""


@dataclass(slots=True)
class AlertTrigger:
    """When a new alert starts the playbook: every criterion given must match (AND);
    within one criterion any listed value matches (OR). Globs (``*``, ``?``) allowed in
    ``rule_id``, ``tags``, ``center`` and ``asset_type``."""

    rule_id: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    level: list[str] = field(default_factory=list)
    min_level: str | None = None
    center: list[str] = field(default_factory=list)
    asset_type: list[str] = field(default_factory=list)

    def matches(self, alert: Alert) -> bool:
        def any_glob(values: Iterable[str], patterns: list[str]) -> bool:
            vals = [str(v).lower() for v in values if v is not None]
            return any(fnmatch.fnmatchcase(v, p.lower()) for v in vals for p in patterns)

        if self.rule_id and not any_glob([alert.rule_id], self.rule_id):
            return False
        if self.tags and not any_glob(alert.tags, self.tags):
            return False
        if self.level and alert.level not in self.level:
            return False
        if self.min_level and level_number(alert.level) < level_number(self.min_level):
            return False
        if self.center and not any_glob([alert.entities.center or ""], self.center):
            return False
        if self.asset_type:
            types = [get_field(e, "citysoc.asset.type") for e in alert.events]
            if not any_glob([t for t in types if isinstance(t, str)], self.asset_type):
                return False
        return True


@dataclass(slots=True)
class Playbook:
    name: str
    title: str
    description: str
    source: str
    steps: list[Step]
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    alert_triggers: list[AlertTrigger] = field(default_factory=list)
    """Alternatives: a new alert matching any of them starts the playbook."""
    manual: bool = True
    schedule: dict[str, Any] | None = None
    title_vi: str = ""
    """Vietnamese title (``title_vi``); the console shows it on Vietnamese pages."""
    description_vi: str = ""
    idempotency_key: Template | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def matches(self, alert: Alert) -> bool:
        return any(t.matches(alert) for t in self.alert_triggers)

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)


# --- YAML with line numbers ------------------------------------------------------------

def _line_map(node: yaml.Node, path: str, out: dict[str, int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = str(k.value)
            sub = f"{path}.{key}" if path else key
            out.setdefault(sub, k.start_mark.line + 1)
            _line_map(v, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _line_map(v, f"{path}[{i}]", out)


class _Errors:
    def __init__(self, file: str, lines: dict[str, int]):
        self.file = file
        self.lines = lines
        self.items: list[SpecError] = []

    def add(self, path: str, message: str) -> None:
        line = None
        p = path
        while p and line is None:
            line = self.lines.get(p)
            p = p.rsplit(".", 1)[0] if "." in p else (p.rsplit("[", 1)[0] if "[" in p else "")
        self.items.append(SpecError(self.file, path, message, line))


def _keys(d: Mapping[str, Any], allowed: set[str], path: str, errs: _Errors) -> None:
    for k in d:
        if k not in allowed:
            errs.add(f"{path}.{k}" if path else str(k),
                     f"unknown key {k!r}; allowed here: {', '.join(sorted(allowed))}")


def _str_list(v: Any, path: str, errs: _Errors) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, (str, int)) for x in v):
        return [str(x) for x in v]
    errs.add(path, "expected a string or a list of strings")
    return []


def _number(v: Any, path: str, errs: _Errors, lo: float, hi: float) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        errs.add(path, f"expected a number from {lo:g} to {hi:g}, got {v!r}")
        return None
    return float(v)


def _template(v: Any, path: str, errs: _Errors) -> Template | None:
    try:
        return compile_template(v)
    except TemplateError as exc:
        errs.add(f"{path}.{exc.path}" if exc.path else path, f"bad template: {exc.message}")
        return None


def _trigger(raw: Any, errs: _Errors) -> tuple[list[AlertTrigger], bool, dict[str, Any] | None]:
    if raw is None:
        return [], True, None
    if not isinstance(raw, dict):
        errs.add("trigger", "expected a mapping with alert, manual and/or schedule")
        return [], True, None
    _keys(raw, {"alert", "manual", "schedule"}, "trigger", errs)
    alerts: list[AlertTrigger] = []
    a = raw.get("alert")
    blocks = a if isinstance(a, list) else [a] if a is not None else []
    if isinstance(a, list) and not a:
        errs.add("trigger.alert", "expected at least one block of criteria")
    for i, blk in enumerate(blocks):
        path = f"trigger.alert[{i}]" if isinstance(a, list) else "trigger.alert"
        if not isinstance(blk, dict) or not blk:
            errs.add(path, "expected a mapping of criteria (rule_id, tags, level, min_level, center, asset_type)")
            continue
        _keys(blk, {"rule_id", "tags", "level", "min_level", "center", "asset_type"}, path, errs)
        t = AlertTrigger(rule_id=_str_list(blk.get("rule_id"), f"{path}.rule_id", errs),
                         tags=_str_list(blk.get("tags"), f"{path}.tags", errs),
                         level=_str_list(blk.get("level"), f"{path}.level", errs),
                         min_level=blk.get("min_level"),
                         center=_str_list(blk.get("center"), f"{path}.center", errs),
                         asset_type=_str_list(blk.get("asset_type"), f"{path}.asset_type", errs))
        for lv in t.level + ([t.min_level] if t.min_level else []):
            if lv not in LEVELS:
                errs.add(f"{path}.level", f"unknown level {lv!r}; use {', '.join(LEVELS)}")
        alerts.append(t)
    manual = raw.get("manual", True)
    if not isinstance(manual, bool):
        errs.add("trigger.manual", "expected true or false")
        manual = True
    sched = raw.get("schedule")
    if sched is not None:
        if not isinstance(sched, dict):
            errs.add("trigger.schedule", "expected {cron: '<5 fields>'} or {interval_s: N}")
            sched = None
        else:
            _keys(sched, {"cron", "interval_s", "timezone"}, "trigger.schedule", errs)
            if ("cron" in sched) == ("interval_s" in sched):
                errs.add("trigger.schedule", "give exactly one of cron or interval_s")
            elif "cron" in sched:
                try:
                    from apscheduler.triggers.cron import CronTrigger

                    CronTrigger.from_crontab(str(sched["cron"]), timezone=sched.get("timezone", "UTC"))
                except (ValueError, TypeError) as exc:
                    errs.add("trigger.schedule.cron", f"bad cron expression: {exc}")
            else:
                _number(sched["interval_s"], "trigger.schedule.interval_s", errs, 10, 366 * 86400)
    return alerts, manual, sched


def _inputs(raw: Any, errs: _Errors) -> dict[str, InputSpec]:
    out: dict[str, InputSpec] = {}
    if raw is None:
        return out
    if not isinstance(raw, dict):
        errs.add("inputs", "expected a mapping of input name -> {type, default, doc}")
        return out
    for name, spec in raw.items():
        path = f"inputs.{name}"
        if not isinstance(name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", name):
            errs.add(path, "input names are letters, digits and '_'")
            continue
        if isinstance(spec, str):
            spec = {"type": spec}
        if not isinstance(spec, dict):
            errs.add(path, "expected {type: ..., default: ..., required: ..., doc: ...}")
            continue
        _keys(spec, {"type", "default", "required", "doc"}, path, errs)
        typ = spec.get("type", "str")
        if typ not in PARAM_TYPES:
            errs.add(f"{path}.type", f"unknown type {typ!r}; use one of {', '.join(PARAM_TYPES)}")
            continue
        default = _template(spec["default"], f"{path}.default", errs) if "default" in spec else None
        required = spec.get("required", True)  # a default that resolves to nothing is still missing
        out[name] = InputSpec(type=typ, required=bool(required), default=default, doc=str(spec.get("doc", "")))
    return out


def _on_error(raw: Any, path: str, errs: _Errors) -> OnError:
    if raw is None:
        return OnError()
    if raw in ("abort", "continue"):
        return OnError(then=raw)
    if not isinstance(raw, dict):
        errs.add(path, "expected abort, continue, or {retry: N, backoff_s: S, factor: F, then: abort|continue}")
        return OnError()
    _keys(raw, {"retry", "backoff_s", "factor", "max_backoff_s", "then"}, path, errs)
    oe = OnError()
    if raw.get("then", "abort") not in ("abort", "continue"):
        errs.add(f"{path}.then", "expected abort or continue")
    else:
        oe.then = raw.get("then", "abort")
    if "retry" in raw:
        n = _number(raw["retry"], f"{path}.retry", errs, 0, 10)
        oe.retries = int(n or 0)
    for key, lo, hi in (("backoff_s", 0, 600), ("factor", 1, 10), ("max_backoff_s", 0, 3600)):
        if key in raw:
            v = _number(raw[key], f"{path}.{key}", errs, lo, hi)
            if v is not None:
                setattr(oe, key, v)
    return oe


def _approval(raw: Any, path: str, errs: _Errors) -> StepApproval | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        errs.add(path, "expected {role: responder} or {auto: '<why no human is needed>'}")
        return None
    _keys(raw, {"role", "auto", "timeout_s"}, path, errs)
    if ("role" in raw) == ("auto" in raw):
        errs.add(path, "give exactly one of role (who must approve) or auto (why it runs unattended)")
        return None
    if "role" in raw and raw["role"] not in ROLES:
        errs.add(f"{path}.role", f"unknown role {raw['role']!r}; use one of {', '.join(ROLES)}")
        return None
    if "auto" in raw and (not isinstance(raw["auto"], str) or len(raw["auto"].strip()) < 10):
        errs.add(f"{path}.auto", "say in a sentence why this destructive step needs no approval")
        return None
    t = _number(raw["timeout_s"], f"{path}.timeout_s", errs, 1, 30 * 86400) if "timeout_s" in raw else None
    return StepApproval(role=raw.get("role"), auto=raw.get("auto"), timeout_s=t)


def _steps(raw: Any, actions: Mapping[str, Action], input_names: set[str], errs: _Errors) -> list[Step]:
    if not isinstance(raw, list) or not raw:
        errs.add("steps", "expected a non-empty list of steps")
        return []
    steps: list[Step] = []
    names: dict[str, int] = {}
    refs: dict[str, set[str]] = {}
    for i, s in enumerate(raw):
        path = f"steps[{i}]"
        if not isinstance(s, dict):
            errs.add(path, "expected a mapping with name, action and with")
            continue
        _keys(s, {"name", "action", "with", "if", "on_error", "timeout", "approval", "needs", "doc"}, path, errs)
        name = s.get("name")
        if not isinstance(name, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", name):
            errs.add(f"{path}.name", "every step needs a name of letters, digits and '_' (later steps use it)")
            continue
        if name in names:
            errs.add(f"{path}.name", f"step name {name!r} is used twice (first at steps[{names[name]}])")
            continue
        names[name] = i
        action_name = s.get("action")
        action = actions.get(action_name) if isinstance(action_name, str) else None
        if action is None:
            errs.add(f"{path}.action", f"unknown action {action_name!r}; known: {', '.join(sorted(actions))}")
        with_raw = s.get("with", {})
        if not isinstance(with_raw, dict):
            errs.add(f"{path}.with", "expected a mapping of the action's inputs")
            with_raw = {}
        parts = {k: _template(v, f"{path}.with.{k}", errs) for k, v in with_raw.items()}
        tpl = compile_template(with_raw) if all(t is not None for t in parts.values()) else None
        exprs = [e for t in parts.values() if t is not None for e in t.expressions]
        if action is not None:
            for k in with_raw:
                if k not in action.inputs:
                    errs.add(f"{path}.with.{k}", f"action {action.name} has no input {k!r}; it takes "
                                                 f"{', '.join(action.inputs) or 'none'}")
            for k, p in action.inputs.items():
                if p.required and p.default is None and k not in with_raw:
                    errs.add(f"{path}.with", f"missing input {k!r} ({p.type}) required by action {action.name}")
        cond = None
        if "if" in s:
            try:
                cond = compile_expression(str(s["if"]) if not isinstance(s["if"], bool) else str(s["if"]).lower())
            except ExpressionError as exc:
                errs.add(f"{path}.if", f"bad condition: {exc.message}"
                         + (f" at position {exc.position}" if exc.position is not None else ""))
        timeout = None
        if "timeout" in s:
            timeout = _number(s["timeout"], f"{path}.timeout", errs, 0.01, MAX_TIMEOUT_S)
        approval = _approval(s.get("approval"), f"{path}.approval", errs)
        if action is not None and action.destructive and approval is None:
            errs.add(f"{path}.approval", f"action {action.name} is destructive: add approval: {{role: responder}}, "
                                         "or approval: {auto: '<why it may run unattended>'}")
        needs = _str_list(s.get("needs"), f"{path}.needs", errs)
        step_refs = set(needs)
        for e in ([cond] if cond else []) + exprs:
            for root, keys in e.refs:
                if root == "inputs" and keys and keys[0] not in input_names:
                    errs.add(path, f"uses inputs.{keys[0]}, which the playbook does not declare under inputs")
                if root == "steps":
                    if not keys:
                        errs.add(path, "'steps' must be followed by a step name (steps.<name>.output...)")
                    else:
                        step_refs.add(keys[0])
        refs[name] = step_refs
        steps.append(Step(index=i, name=name, action=str(action_name), with_=tpl or compile_template({}), if_=cond,
                          on_error=_on_error(s.get("on_error"), f"{path}.on_error", errs), timeout=timeout,
                          approval=approval, destructive=bool(action and action.destructive), needs=needs))
    # references and order: a step may only use steps that run before it; a cycle is an error
    for st in steps:
        for r in refs[st.name]:
            if r not in names:
                errs.add(f"steps[{st.index}]", f"refers to step {r!r}, which does not exist")
            elif r == st.name:
                errs.add(f"steps[{st.index}]", "a step cannot use its own results")
    order = _topo(steps, refs, errs)
    for pos, st in enumerate(order):
        st.index = pos
    return order


def _topo(steps: list[Step], refs: dict[str, set[str]], errs: _Errors) -> list[Step]:
    """Steps in an order where each runs after the steps it uses (listing order otherwise)."""
    by_name = {s.name: s for s in steps}
    deps = {s.name: {r for r in refs[s.name] if r in by_name and r != s.name} for s in steps}
    done: list[Step] = []
    placed: set[str] = set()
    remaining = [s.name for s in steps]
    while remaining:
        ready = next((n for n in remaining if deps[n] <= placed), None)
        if ready is None:
            # find and name one cycle
            start = remaining[0]
            seen: list[str] = []
            cur = start
            while cur not in seen:
                seen.append(cur)
                cur = sorted(d for d in deps[cur] if d not in placed)[0]
            cycle = seen[seen.index(cur):] + [cur]
            errs.add(f"steps[{by_name[cycle[0]].index}]", "cycle between steps: " + " -> ".join(cycle))
            return steps
        remaining.remove(ready)
        placed.add(ready)
        done.append(by_name[ready])
    return done


def parse_playbook(data: Any, file: str, actions: Mapping[str, Action], lines: dict[str, int] | None = None) -> Playbook:
    """Validate already-parsed YAML; raises :class:`PlaybookLoadError` with every problem."""
    errs = _Errors(file, lines or {})
    if not isinstance(data, dict):
        errs.add("", "a playbook file is a mapping with name, trigger, inputs and steps")
        raise PlaybookLoadError(errs.items)
    _keys(data, {"name", "title", "title_vi", "description", "description_vi", "trigger", "inputs", "steps", "idempotency_key", "tags"}, "", errs)
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        errs.add("name", "every playbook needs a name: lowercase letters, digits, '-' and '_' (max 64)")
        name = str(name)
    alert_t, manual, sched = _trigger(data.get("trigger"), errs)
    inputs = _inputs(data.get("inputs"), errs)
    for iname, spec in inputs.items():
        if spec.default is not None:
            for e in spec.default.expressions:
                for root, _ref_keys in e.refs:
                    if root in ("steps", "inputs"):
                        errs.add(f"inputs.{iname}.default", f"an input default may use alert, run and trigger, "
                                                            f"not {root}")
    steps = _steps(data.get("steps"), actions, set(inputs), errs)
    idem = _template(data["idempotency_key"], "idempotency_key", errs) if "idempotency_key" in data else None
    if errs.items:
        raise PlaybookLoadError(errs.items)
    return Playbook(name=name, title=str(data.get("title") or name), description=str(data.get("description") or ""),
                    title_vi=str(data.get("title_vi") or ""), description_vi=str(data.get("description_vi") or ""),
                    source=file, steps=steps, inputs=inputs, alert_triggers=alert_t, manual=manual, schedule=sched,
                    idempotency_key=idem, raw=data)


def load_playbook(path: str | Path, actions: Mapping[str, Action]) -> Playbook:
    """Read and validate one YAML file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaybookLoadError([SpecError(str(p), "", f"cannot read: {exc}")]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise PlaybookLoadError([SpecError(str(p), "", f"invalid YAML: {getattr(exc, 'problem', exc)}",
                                           mark.line + 1 if mark else None)]) from None
    lines: dict[str, int] = {}
    if node is not None:
        _line_map(node, "", lines)
    return parse_playbook(data, str(p), actions, lines)


@dataclass
class Catalog:
    playbooks: dict[str, Playbook]
    errors: list[SpecError]


def load_folders(folders: Iterable[str | Path], actions: Mapping[str, Action]) -> Catalog:
    """Every ``*.yml``/``*.yaml`` under ``folders`` (recursively). Valid files load; invalid
    ones are reported in ``errors`` and left out whole. A name used twice is an error on
    the second file."""
    playbooks: dict[str, Playbook] = {}
    errors: list[SpecError] = []
    for folder in folders:
        f = Path(folder)
        if not f.is_dir():
            errors.append(SpecError(str(f), "", "not a folder (check playbooks.folders)"))
            continue
        for path in sorted([*f.rglob("*.yml"), *f.rglob("*.yaml")]):
            try:
                pb = load_playbook(path, actions)
            except PlaybookLoadError as exc:
                errors.extend(exc.errors)
                continue
            if pb.name in playbooks:
                errors.append(SpecError(str(path), "name", f"playbook name {pb.name!r} is already used by "
                                                           f"{playbooks[pb.name].source}"))
                continue
            playbooks[pb.name] = pb
    return Catalog(playbooks, errors)
