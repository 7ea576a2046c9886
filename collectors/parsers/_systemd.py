"""systemd's unit state messages in plain syslog (``systemd[1]: Started ssh.service - OpenBSD Secure Shell server.``).

Not a format of its own: the line stays ``system.syslog``; the syslog parser calls
:func:`apply_systemd` for the ``systemd`` program so a service starting, stopping or
failing is ``event.category: process`` with ``event.type`` start/end/change, which is
what a watch for a stopped logging or audit daemon looks for. Targets (``Stopped target
Multi-User System.``) are synchronisation points, not processes, and get no category.
"""
from __future__ import annotations

import re

from core.events import Event, set_field

from ._common import categorize, set_outcome

__all__ = ["apply_systemd"]

# systemd >= 249 writes "unit - Description", older ones only the description.
_STATE_RE = re.compile(
    r"(?P<verb>Started|Stopped|Reloaded|Failed to start|Failed to stop|Failed to reload) "
    r"(?P<what>.+?)\.?$")
_FAILED_RE = re.compile(r"(?P<unit>[^\s:]+\.[a-z]+): (?:Failed with result '(?P<result>[^']+)'|Main process exited, "
                        r"code=(?P<code>\w+), status=(?P<status>\S+))\.?$")
_UNIT_RE = re.compile(r"(?P<unit>\S+\.(?:service|socket|timer|mount|scope|path|slice|swap|device|automount)) - ")
_VERBS: dict[str, tuple[str, str, bool]] = {
    "Started": ("start", "service-start", True),
    "Stopped": ("end", "service-stop", True),
    "Reloaded": ("change", "service-reload", True),
    "Failed to start": ("start", "service-start", False),
    "Failed to stop": ("end", "service-stop", False),
    "Failed to reload": ("change", "service-reload", False),
}


def apply_systemd(ev: Event, message: str) -> bool:
    """Categorise a systemd unit message; False when it is not one (the event is left as it was)."""
    m = _STATE_RE.match(message)
    if m:
        what = m.group("what")
        if what.startswith("target "):
            return False
        type_, action, ok = _VERBS[m.group("verb")]
        categorize(ev, "process", type_, action)
        if not ok:
            set_outcome(ev, False)
        u = _UNIT_RE.match(what)
        if u:
            set_field(ev, "systemd.unit", u.group("unit"))
        return True
    m = _FAILED_RE.match(message)
    if m and (m.group("result") or m.group("code") != "exited" or m.group("status") != "0/SUCCESS"):
        categorize(ev, "process", "end", "service-failed")
        set_outcome(ev, False)
        set_field(ev, "systemd.unit", m.group("unit"))
        return True
    return False
