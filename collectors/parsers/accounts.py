"""Linux account management (shadow-utils): useradd, userdel, groupadd, usermod, gpasswd, passwd, chage.

Account changes on a server are exactly what an intruder making itself at home
produces (a new user, a user added to ``sudo``), so they are ``iam`` events with the
target in ``user.target.name`` / ``group.name`` and, when the line says who did it,
the actor in ``user.name``.
"""
from __future__ import annotations

import datetime as _dt
import re

from core.events import Event, set_field
from core.protocols import RawRecord

from ._app import AppParser
from ._common import categorize, set_outcome

__all__ = ["AccountsParser", "PARSER"]

_KV_RE = re.compile(r"(\w+)=([^,]*)")
_RULES: list[tuple[re.Pattern[str], str, list[str], str]] = [
    (re.compile(r"new user: (?P<kv>.*)$"), "user-created", ["user", "creation"], "user"),
    (re.compile(r"new group: (?P<kv>.*)$"), "group-created", ["group", "creation"], "group"),
    (re.compile(r"delete user '(?P<user>[^']+)'"), "user-deleted", ["user", "deletion"], "user"),
    (re.compile(r"removed (?:shadow )?group '(?P<group>[^']+)' owned by '[^']*'"), "group-deleted",
     ["group", "deletion"], "group"),
    (re.compile(r"group '(?P<group>[^']+)' removed"), "group-deleted", ["group", "deletion"], "group"),
    (re.compile(r"add '(?P<user>[^']+)' to (?:shadow )?group '(?P<group>[^']+)'"), "user-added-to-group",
     ["group", "change"], "membership"),
    (re.compile(r"delete '(?P<user>[^']+)' from (?:shadow )?group '(?P<group>[^']+)'"), "user-removed-from-group",
     ["group", "change"], "membership"),
    # gpasswd: "user alice added by root to group sudo", "... removed by root from shadow group sudo".
    (re.compile(r"user (?P<user>\S+) added by (?P<by>\S+) to (?:shadow )?group (?P<group>\S+)$"), "user-added-to-group",
     ["group", "change"], "membership"),
    (re.compile(r"user (?P<user>\S+) removed by (?P<by>\S+) from (?:shadow )?group (?P<group>\S+)$"),
     "user-removed-from-group", ["group", "change"], "membership"),
    (re.compile(r"(?P<role>members|administrators) of (?:shadow )?group (?P<group>\S+) set by (?P<by>\S+) to (?P<list>.*)$"),
     "group-members-set", ["group", "change"], "group"),
    (re.compile(r"password of (?:shadow )?group (?P<group>\S+) (?:changed|removed) by (?P<by>\S+)"),
     "group-password-changed", ["group", "change"], "group"),
    (re.compile(r"change user '(?P<user>[^']+)' (?P<what>.*)$"), "user-changed", ["user", "change"], "user"),
    (re.compile(r"lock user '(?P<user>[^']+)' password"), "user-locked", ["user", "change"], "user"),
    (re.compile(r"unlock user '(?P<user>[^']+)' password"), "user-unlocked", ["user", "change"], "user"),
    (re.compile(r"password for '(?P<user>[^']+)' changed by '(?P<by>[^']+)'"), "password-changed",
     ["user", "change"], "user"),
    (re.compile(r"changed password expiry for (?P<user>\S+)"), "password-expiry-changed", ["user", "change"], "user"),
    (re.compile(r"failed adding user '(?P<user>[^']+)'"), "user-created", ["user", "creation"], "failed"),
]
"""(message regex, event.action, event.type, kind): first match wins, so the specific forms come first."""


class AccountsParser(AppParser):
    name = "accounts"
    dataset = "system.auth"
    module = "system"
    order = 40
    body_sniff = True
    programs = frozenset({"useradd", "userdel", "usermod", "groupadd", "groupdel", "groupmod", "gpasswd",
                          "passwd", "chpasswd", "chage", "adduser", "deluser"})

    def sniff(self, message: str) -> bool:
        return message.startswith(("new user: name=", "new group: name=", "delete user '"))

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        for regex, action, types, kind in _RULES:
            m = regex.search(message)
            if not m:
                continue
            self.claim(ev, record)
            categorize(ev, "iam", types, action)
            set_outcome(ev, kind != "failed")
            groups = m.groupdict()
            if "kv" in groups:
                kv = {k: v.strip() for k, v in _KV_RE.findall(groups["kv"])}
                if kind == "user":
                    set_field(ev, "user.target.name", kv.get("name", ""))
                    if kv.get("UID"):
                        set_field(ev, "user.target.id", kv["UID"])
                    if kv.get("GID"):
                        set_field(ev, "group.id", kv["GID"])  # the new account's primary group
                    for key in ("home", "shell"):
                        if kv.get(key):
                            set_field(ev, f"system.auth.useradd.{key}", kv[key])
                else:
                    set_field(ev, "group.name", kv.get("name", ""))
                    if kv.get("GID"):
                        set_field(ev, "group.id", kv["GID"])
                return True
            if groups.get("user"):
                set_field(ev, "user.target.name", groups["user"])
            if groups.get("group"):
                set_field(ev, "group.name", groups["group"])
            if groups.get("by"):
                set_field(ev, "user.name", groups["by"])
            if groups.get("what"):
                set_field(ev, "system.auth.accounts.change", groups["what"])
            if groups.get("list") is not None:
                set_field(ev, f"system.auth.accounts.{groups['role']}", [u for u in groups["list"].split(",") if u])
            return True
        return False


PARSER = AccountsParser()
