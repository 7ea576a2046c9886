"""The action registry: every action a playbook step may name, keyed by its ``action:`` id.

Our own actions are listed explicitly in :data:`ACTIONS`; third-party packages add theirs
under the ``citysoc.actions`` entry-point group (each entry an :class:`Action` subclass).
"""
from __future__ import annotations

import logging
from importlib.metadata import entry_points

from playbooks.actions.base import Action, ActionContext, ActionError, Param, validate_params
from playbooks.actions.database import DisableDbAccount, EnableDbAccount
from playbooks.actions.files import QuarantineFile, RestoreFile
from playbooks.actions.nft import BlockIp, IsolateHost, ReleaseHost, UnblockIp
from playbooks.actions.notify import NotifyEmail, NotifyWebhook
from playbooks.actions.soc import CreateCase, Enrich, HttpRequest, UpdateAlert

__all__ = ["ACTIONS", "Action", "ActionContext", "ActionError", "Param", "validate_params", "load_actions"]

log = logging.getLogger("citysoc.playbooks")

ACTIONS: dict[str, Action] = {a.name: a for a in (
    BlockIp(), UnblockIp(), IsolateHost(), ReleaseHost(), DisableDbAccount(), EnableDbAccount(),
    QuarantineFile(), RestoreFile(), NotifyEmail(), NotifyWebhook(), CreateCase(), UpdateAlert(), Enrich(),
    HttpRequest(),
)}


def load_actions() -> dict[str, Action]:
    """Our actions plus those published under the ``citysoc.actions`` entry point."""
    found = dict(ACTIONS)
    for ep in entry_points(group="citysoc.actions"):
        try:
            cls = ep.load()
            action = cls() if isinstance(cls, type) else cls
        except Exception as exc:
            log.error("action plugin %s could not be loaded: %s", ep.name, exc)
            continue
        if not isinstance(action, Action) or not action.name:
            log.error("action plugin %s is not a citysoc Action with a name; ignored", ep.name)
            continue
        if action.name in found:
            log.error("action plugin %s reuses the name %r of a built-in action; ignored", ep.name, action.name)
            continue
        found[action.name] = action
    return found
