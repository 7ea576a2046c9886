"""Who may steer an automatic response: corroboration of a target taken from log content.

An alert's entities come from log lines, and log lines are unauthenticated: one spoofed
UDP syslog datagram (``... User Login. User: 888888, IP: 198.51.100.23``) fired the
factory-account rule, and a playbook with ``approval: {auto: ...}`` then blocked whatever
address the attacker wrote, 20 addresses in 30 s. So an automatic destructive step of a
run started by an alert acts on its own only when its target is *corroborated*:

* the alert comes from an engine that observes the network itself (our packet capture:
  ``observed_engines``, default ``network``); or
* alerts of at least ``min_rules`` distinct rules name the target (as source address, or
  as user for account actions) within ``window_s``, the triggering alert included.

Otherwise the step waits for a person (role ``approval_role``), like any approval gate,
and the wait says why. People starting runs by hand are not gated here: they are the
corroboration.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any

from core.alerts import AlertFilter, AlertStore
from core.events import TimestampError, parse_timestamp
from core.playbooks import CorroborationSettings

__all__ = ["target_of", "corroboration"]

_TARGET_KEYS = (("ip", "source_ip"), ("user", "user"), ("account", "user"))


def target_of(inputs: dict[str, Any]) -> tuple[str, str] | None:
    """(alert filter field, value) of what a destructive step acts on, if it names one."""
    for key, field in _TARGET_KEYS:
        v = inputs.get(key)
        if isinstance(v, str) and v:
            return field, v
    return None


def corroboration(alert: dict[str, Any] | None, inputs: dict[str, Any], store: AlertStore | None,
                  settings: CorroborationSettings) -> str | None:
    """None when the step may act automatically; else why it must wait for a person."""
    if not settings.enabled or alert is None:
        return None
    if alert.get("engine") in settings.observed_engines:
        return None
    target = target_of(inputs)
    if target is None:
        return None  # acts on nothing taken from the alert (e.g. a fixed notification)
    field, value = target
    rules = {alert.get("rule_id")}
    if store is not None:
        # the window ends at the alert's own last event (replays and old files correlate as they happened)
        try:
            anchor = parse_timestamp(alert.get("last_seen"))
        except TimestampError:
            anchor = _dt.datetime.now(_dt.timezone.utc)
        since = (anchor - _dt.timedelta(seconds=settings.window_s)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        flt = AlertFilter(since=since, limit=200, count_up_to=200, **{field: value})
        _total, found = store.list(flt)
        rules.update(a.rule_id for a in found)
    rules.discard(None)
    if len(rules) >= settings.min_rules:
        return None
    return (f"{value} comes only from log content ({len(rules)} rule(s) name it in the last "
            f"{settings.window_s:g} s, {settings.min_rules} needed, and no network observation): "
            "a person must approve acting on it")
