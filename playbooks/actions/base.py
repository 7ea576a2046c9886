"""What an action is: metadata (inputs with types, outputs, destructive or not) plus ``run``.

The runner never looks inside an action: it renders the step's ``with:`` block,
:func:`validate_params` checks the result against the action's declared inputs (so an
``ip`` input really is an IP address before it reaches nft, and an ``identifier`` has
no NUL byte before it reaches SQL), and then either calls :meth:`Action.run` or, on a
dry run, :meth:`Action.describe`. Actions are synchronous (they talk to nft, SMTP,
PostgreSQL); the runner calls them in a worker thread and each one bounds its own I/O
with ``ctx.timeout``.

Adding an action: subclass :class:`Action`, declare ``name``, ``inputs``, ``outputs``
and ``destructive``, implement ``run`` and ``describe``, and list it in
``playbooks.actions.ACTIONS`` (or publish it under the ``citysoc.actions`` entry point).
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from core.alerts import AlertStore, CaseStore
from core.playbooks import PlaybookInputError, PlaybookSettings
from core.protocols import AttachmentScanner

__all__ = ["Param", "Action", "ActionContext", "ActionError", "validate_params", "PARAM_TYPES"]


class ActionError(RuntimeError):
    """An action could not do its work; the message says what failed and what to check."""


_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*$")


def _ip(v: Any) -> str:
    """An address exactly as :mod:`ipaddress` prints it: no scope id (``fe80::1%eth0``), no
    spaces, no leading zeros, lower case. Anything else is refused rather than cleaned, so
    the value that was shown, approved and audited is the value that reaches nft."""
    if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        v = str(v)
    if not isinstance(v, str) or len(v) > 45:
        raise ValueError(f"{str(v)[:60]!r} is not an IP address")
    if "%" in v:
        raise ValueError(f"{v[:60]!r}: IPv6 scope ids (%...) are refused; give the address alone")
    try:
        canonical = str(ipaddress.ip_address(v))
    except ValueError:
        raise ValueError(f"{v[:60]!r} is not an IP address") from None
    if canonical != v:
        raise ValueError(f"{v!r} is not written the canonical way; use {canonical!r}")
    return canonical


def _int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not an integer")
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str) and re.fullmatch(r"-?\d{1,18}", v.strip()):
        return int(v)
    raise ValueError(f"{v!r} is not an integer")


def _float(v: Any) -> float:
    if isinstance(v, bool):
        raise ValueError(f"{v!r} is not a number")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{v!r} is not a number") from None


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false", "yes", "no", "1", "0"):
        return v.lower() in ("true", "yes", "1")
    raise ValueError(f"{v!r} is not true or false")


def _str(v: Any) -> str:
    if v is None or isinstance(v, (dict, list)):
        raise ValueError(f"{v!r} is not text")
    s = str(v)
    if "\x00" in s:
        raise ValueError("text contains a NUL byte")
    return s


def _line(v: Any) -> str:
    s = _str(v)
    if "\r" in s or "\n" in s:
        raise ValueError("must be a single line (no CR/LF)")
    return s


def _identifier(v: Any) -> str:
    s = _line(v)
    if not s or len(s) > 63:
        raise ValueError(f"{s!r} is not a database identifier (1-63 characters)")
    return s


def _email(v: Any) -> str:
    s = _line(v).strip()
    if not _EMAIL.match(s) or len(s) > 254:
        raise ValueError(f"{s!r} is not an e-mail address")
    return s


def _emails(v: Any) -> list[str]:
    items = v if isinstance(v, list) else [x for x in re.split(r"[,\s]+", str(v)) if x] if isinstance(v, str) else None
    if items is None:
        raise ValueError(f"{v!r} is not a list of e-mail addresses")
    return [_email(x) for x in items]


def _list(v: Any) -> list:
    if not isinstance(v, list):
        raise ValueError(f"{v!r} is not a list")
    return v


def _ints(v: Any) -> list[int]:
    if v is None:
        return []
    return [_int(x) for x in (v if isinstance(v, list) else [v]) if x is not None]


def _dict(v: Any) -> dict:
    if not isinstance(v, dict):
        raise ValueError(f"{v!r} is not a mapping")
    return v


def _path(v: Any) -> str:
    s = _line(v)
    if not s:
        raise ValueError("empty path")
    return s


def _any(v: Any) -> Any:
    return v


PARAM_TYPES: dict[str, Callable[[Any], Any]] = {
    "str": _str, "line": _line, "int": _int, "float": _float, "bool": _bool, "ip": _ip,
    "identifier": _identifier, "email": _email, "emails": _emails, "list": _list, "ints": _ints,
    "dict": _dict, "path": _path, "any": _any,
}
"""Input types an action may declare, each a validator that returns the clean value."""


@dataclass(frozen=True, slots=True)
class Param:
    type: str
    required: bool = True
    default: Any = None
    doc: str = ""
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in PARAM_TYPES:
            raise ValueError(f"unknown parameter type {self.type!r}; known: {', '.join(PARAM_TYPES)}")


@dataclass
class ActionContext:
    """What an action may use: settings, the SOC's stores and the callables wiring hands in."""

    settings: PlaybookSettings
    data_dir: Path
    alerts: AlertStore | None = None
    cases: CaseStore | None = None
    asset_lookup: Callable[[str], dict[str, Any] | None] | None = None
    """``ip or host name -> asset record`` (the inventory); None when no inventory is wired."""
    intel_lookup: Callable[[str], list[dict[str, Any]]] | None = None
    """``indicator -> matching threat-intel records``; None when no intel is wired."""
    rescan: AttachmentScanner | None = None
    """YARA scanner used to rescan quarantined files (``detections.yara``, wired by citysoc)."""
    run_id: int = 0
    playbook: str = ""
    step: str = ""
    actor: str = "system:playbooks"
    timeout: float = 30.0
    extra: dict[str, Any] = field(default_factory=dict)

    def for_step(self, *, run_id: int, playbook: str, step: str, actor: str, timeout: float) -> ActionContext:
        return ActionContext(settings=self.settings, data_dir=self.data_dir, alerts=self.alerts, cases=self.cases,
                             asset_lookup=self.asset_lookup, intel_lookup=self.intel_lookup, rescan=self.rescan,
                             run_id=run_id, playbook=playbook, step=step, actor=actor, timeout=timeout,
                             extra=self.extra)


class Action:
    """Base of every action. Subclasses set the class attributes and implement run/describe."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    inputs: ClassVar[dict[str, Param]] = {}
    outputs: ClassVar[dict[str, str]] = {}
    """Output name -> what it holds (later steps read ``steps.<name>.output.<key>``)."""
    destructive: ClassVar[bool] = False
    """True for actions that cut someone off or move data; playbooks must gate them with an approval
    unless the playbook says ``approval: none`` for that step with a reason."""
    target: ClassVar[tuple[str, str] | None] = None
    """``(input name, alert entity)`` naming whom a destructive action acts on, e.g.
    ``("ip", "source_ip")``. An automatic step of such an action in a run started by an alert
    acts only when other alerts corroborate that target (``playbooks.corroboration``)."""

    def run(self, ctx: ActionContext, **params: Any) -> dict[str, Any]:
        raise NotImplementedError(f"action {self.name!r} does not implement run()")

    def describe(self, ctx: ActionContext, **params: Any) -> str:
        """One sentence saying what ``run`` would do with these inputs (dry-run)."""
        raise NotImplementedError(f"action {self.name!r} does not implement describe()")


def validate_params(action: Action, params: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``params`` against ``action.inputs``; return the clean values (defaults filled).

    Raises :class:`PlaybookInputError` listing every bad or missing input.
    """
    problems: list[str] = []
    clean: dict[str, Any] = {}
    for key in params:
        if key not in action.inputs:
            problems.append(f"unknown input {key!r} (known: {', '.join(action.inputs) or 'none'})")
    for key, p in action.inputs.items():
        raw = params.get(key)
        if raw is None or raw == "" or raw == []:
            if p.required and p.default is None:
                problems.append(f"input {key!r} is required ({p.type}) but "
                                + ("was not given" if key not in params else "resolved to nothing"))
                continue
            clean[key] = p.default
            continue
        try:
            val = PARAM_TYPES[p.type](raw)
        except (ValueError, TypeError) as exc:
            problems.append(f"input {key!r}: {exc}")
            continue
        if p.choices and val not in p.choices:
            problems.append(f"input {key!r}: {val!r} is not one of {', '.join(map(str, p.choices))}")
            continue
        clean[key] = val
    if problems:
        raise PlaybookInputError(f"action {action.name}: " + "; ".join(problems))
    return clean
