"""sudo's and su's log lines: ``alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id``.

A successful line is a privileged process start (``user.name`` ran it as
``user.effective.name``); a line whose first item is an error (``3 incorrect password
attempts``, ``user NOT in sudoers``, ``command not allowed``) is a failure.
``COMMAND=`` is always last and may itself contain ``" ; "``, so it is cut at its key,
never split.

su (util-linux and shadow-utils wording) is the other way to become another user, so it
lives here too: ``(to root) alice on pts/0``, ``FAILED SU (to root) alice on pts/0``,
``Successful su for root by alice``, ``FAILED su for root by alice``, the sulog form
``+ pts/0 alice:root`` / ``- pts/0 alice:root`` and BSD's ``BAD SU alice to root on ...`` and
``'su root' failed for lonvick on /dev/pts/8`` (the example of RFC 3164).
The user who ran su is ``user.name``; the account it switched to ``user.effective.name``.
"""
from __future__ import annotations

import datetime as _dt
import re

from core.events import Event, set_field
from core.protocols import RawRecord

from ._app import AppParser
from ._common import categorize, set_outcome
from .pam import PARSER as _PAM

__all__ = ["SudoParser", "PARSER"]

_HEAD_RE = re.compile(r"\s*([^\s:]+) : (.*)$", re.S)
_ITEM_RE = re.compile(r"([A-Z]+)=(.*)$", re.S)
_SU_RULES: tuple[re.Pattern[str], ...] = (
    re.compile(r"(?P<failed>FAILED SU )?\(to (?P<to>[^)\s]+)\) (?P<by>\S+) on (?P<tty>\S+)$"),
    re.compile(r"(?P<failed>Successful|FAILED) su for (?P<to>\S+) by (?P<by>\S+)$"),
    re.compile(r"(?P<failed>[+-]) (?P<tty>\S+) (?P<by>[^\s:]+):(?P<to>\S+)$"),
    re.compile(r"(?P<failed>BAD SU )?(?P<by>\S+) to (?P<to>\S+) on (?P<tty>\S+)$"),
    re.compile(r"'su (?P<to>\S+)' (?P<failed>failed|succeeded) for (?P<by>\S+) on (?P<tty>\S+)$"),
)
"""su's messages; ``failed`` names the marker that says how it went (absent, ``Successful`` or ``+``: it worked)."""


class SudoParser(AppParser):
    name = "sudo"
    dataset = "system.auth"
    module = "system"
    order = 20
    body_sniff = True
    programs = frozenset({"sudo", "su"})

    def sniff(self, message: str) -> bool:
        return " : " in message and "COMMAND=" in message and "USER=" in message

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        if message.startswith("pam_") and _PAM.apply(ev, message, program, record, now):
            return True
        if (program or "").rsplit("/", 1)[-1].lower() == "su":
            return self._su(ev, message, record)
        m = _HEAD_RE.match(message)
        if not m or "=" not in m.group(2):
            return False
        self.claim(ev, record)
        user, rest = m.groups()
        command = None
        cut = rest.find("COMMAND=")
        if cut >= 0:
            command = rest[cut + len("COMMAND="):]
            rest = rest[:cut]
        error = None
        fields: dict[str, str] = {}
        for item in (p.strip() for p in rest.split(" ; ")):
            if not item:
                continue
            im = _ITEM_RE.match(item)
            if im:
                fields[im.group(1)] = im.group(2)
            elif error is None:
                error = item
        set_field(ev, "user.name", user)
        if "USER" in fields:
            set_field(ev, "user.effective.name", fields["USER"])
        if "GROUP" in fields:
            set_field(ev, "user.effective.group.name", fields["GROUP"])
        if "PWD" in fields:
            set_field(ev, "process.working_directory", fields["PWD"])
        if "TTY" in fields:
            set_field(ev, "system.auth.sudo.tty", fields["TTY"])
        if command:
            set_field(ev, "process.command_line", command)
            args = command.split()
            set_field(ev, "process.executable", args[0])
            set_field(ev, "process.args", args)
        if error is None:
            categorize(ev, "process", "start", "sudo-command")
            set_outcome(ev, True)
        else:
            set_field(ev, "system.auth.sudo.error", error)
            if "incorrect password" in error:
                categorize(ev, ["authentication", "process"], ["info", "start"], "sudo-authentication-failed")
            else:
                categorize(ev, "process", "start", "sudo-denied")
            set_outcome(ev, False)
        return True

    def _su(self, ev: Event, message: str, record: RawRecord) -> bool:
        for regex in _SU_RULES:
            m = regex.match(message.strip())
            if not m:
                continue
            self.claim(ev, record)
            flag = m.group("failed")
            ok = not flag or flag in ("Successful", "+", "succeeded")
            categorize(ev, "authentication", "start" if ok else "info", "su-session" if ok else "su-failed")
            set_outcome(ev, ok)
            set_field(ev, "user.name", m.group("by"))
            set_field(ev, "user.effective.name", m.group("to"))
            tty = m.groupdict().get("tty")
            if tty:
                set_field(ev, "system.auth.su.tty", tty)
            return True
        if message.startswith("pam_authenticate: "):
            categorize(ev, "authentication", "info", "su-failed")
            set_outcome(ev, False)
            set_field(ev, "system.auth.su.error", message[len("pam_authenticate: "):])
            self.claim(ev, record)
            return True
        return False


PARSER = SudoParser()
