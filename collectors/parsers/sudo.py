"""sudo's log lines: ``alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id``.

A successful line is a privileged process start (``user.name`` ran it as
``user.effective.name``); a line whose first item is an error (``3 incorrect password
attempts``, ``user NOT in sudoers``, ``command not allowed``) is a failure.
``COMMAND=`` is always last and may itself contain ``" ; "``, so it is cut at its key,
never split.
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


class SudoParser(AppParser):
    name = "sudo"
    dataset = "system.auth"
    module = "system"
    programs = frozenset({"sudo"})

    def sniff(self, message: str) -> bool:
        return " : " in message and "COMMAND=" in message and "USER=" in message

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        if message.startswith("pam_") and _PAM.apply(ev, message, program, record, now):
            return True
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


PARSER = SudoParser()
