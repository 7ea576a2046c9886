"""Linux audit records: ``type=USER_LOGIN msg=audit(1764064800.123:456): ... res=failed``.

One line is one record (a multi-record event shares the ``audit(...)`` serial, kept in
``auditd.log.sequence`` so a later stage can join them). Every key/value lands in
``auditd.log.*`` (the layout of Filebeat's auditd module), including the inner
``msg='...'`` of user-space records; the common ones are promoted to ECS. Values that
auditd hex-encodes (because they contain spaces or control characters) are decoded for
the keys where it does so (``EXECVE a0..``, ``proctitle``, ``cmd``, ``name``, ...).
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import re

from core.events import Event, set_field
from core.protocols import RawRecord

from ._app import AppParser
from ._common import add_tag, categorize, set_outcome, set_timestamp, to_int

__all__ = ["AuditdParser", "PARSER"]

_HEAD_RE = re.compile(r"(?:node=(?P<node>\S+) )?type=(?P<type>[A-Z0-9_]+) msg=audit\((?P<ts>\d+(?:\.\d+)?):(?P<seq>\d+)\):\s?(?P<body>.*)$", re.S)
_KV_RE = re.compile(r"""([\w-]+)=('[^']*'|"[^"]*"|\S*)""")
_HEX_RE = re.compile(r"^(?:[0-9A-F]{2})+$")
_HEX_KEYS = frozenset({"proctitle", "cmd", "name", "comm", "exe", "cwd", "path", "data", "acct", "old-name", "new-name"})
_ARG_RE = re.compile(r"a\d+$")

_CATEGORY: dict[str, tuple[list[str], list[str]]] = {}
for _t in ("USER_LOGIN", "USER_AUTH", "USER_ERR", "USER_LOGOUT", "LOGIN", "ANOM_LOGIN_FAILURES"):
    _CATEGORY[_t] = (["authentication"], ["info"])
for _t in ("CRED_ACQ", "CRED_REFR", "USER_START"):
    _CATEGORY[_t] = (["session"], ["start"])
for _t in ("CRED_DISP", "USER_END"):
    _CATEGORY[_t] = (["session"], ["end"])
for _t in ("ADD_USER", "DEL_USER", "USER_MGMT", "ACCT_LOCK", "ACCT_UNLOCK", "USER_CHAUTHTOK", "USER_ACCT"):
    _CATEGORY[_t] = (["iam"], ["user", "change"] if _t != "USER_ACCT" else ["user", "info"])
for _t in ("ADD_GROUP", "DEL_GROUP", "GRP_MGMT", "GRP_CHAUTHTOK"):
    _CATEGORY[_t] = (["iam"], ["group", "change"])
for _t in ("EXECVE", "USER_CMD", "PROCTITLE"):
    _CATEGORY[_t] = (["process"], ["start"])
for _t in ("PATH", "CWD"):
    _CATEGORY[_t] = (["file"], ["info"])
for _t in ("CONFIG_CHANGE", "DAEMON_CONFIG", "MAC_POLICY_LOAD", "MAC_STATUS", "NETFILTER_CFG"):
    _CATEGORY[_t] = (["configuration"], ["change"])
for _t in ("SERVICE_START", "SERVICE_STOP", "DAEMON_START", "DAEMON_END"):
    _CATEGORY[_t] = (["process"], ["start" if _t.endswith("START") else "end"])
for _t in ("AVC", "SELINUX_ERR", "ANOM_ABEND", "ANOM_PROMISCUOUS", "ANOM_EXEC", "ANOM_MK_EXEC"):
    _CATEGORY[_t] = (["intrusion_detection"], ["info"])
_EXEC_SYSCALLS = frozenset({"59", "322", "execve", "execveat"})


def _unquote(key: str, value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    if (key in _HEX_KEYS or _ARG_RE.match(key)) and _HEX_RE.match(value) and len(value) >= 2:
        return bytes.fromhex(value).replace(b"\x00", b" ").decode("utf-8", errors="replace").strip()
    return value


def parse_kv(body: str) -> dict[str, str]:
    """auditd ``key=value`` pairs, with the inner ``msg='...'`` merged in."""
    out: dict[str, str] = {}
    for key, raw in _KV_RE.findall(body):
        if key == "msg" and raw.startswith("'"):
            for k2, v2 in _KV_RE.findall(raw[1:-1]):
                out[k2] = _unquote(k2, v2)
            continue
        out[key] = _unquote(key, raw)
    return out


def _known(value: str | None) -> bool:
    return bool(value) and value not in ("?", "(null)", "(none)", "unset", "4294967295", "-1")


class AuditdParser(AppParser):
    name = "auditd"
    dataset = "auditd.log"
    module = "auditd"
    programs = frozenset({"audit", "audispd", "auditd", "audisp-syslog"})

    def sniff(self, message: str) -> bool:
        return "msg=audit(" in message[:120] and _HEAD_RE.match(message) is not None

    def parse_native(self, ev: Event, text: str, record: RawRecord, now: _dt.datetime) -> bool:
        if not text.startswith(("type=", "node=")):
            return False
        return self.apply(ev, text, None, record, now)

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        m = _HEAD_RE.match(message)
        if not m:
            return False
        self.claim(ev, record)
        rtype = m.group("type")
        kv = parse_kv(m.group("body"))
        ev["message"] = message
        set_timestamp(ev, m.group("ts"), now)
        log: dict[str, object] = {"record_type": rtype, "sequence": int(m.group("seq"))}
        log.update(kv)
        ev["auditd"] = {"log": log}
        if m.group("node"):
            set_field(ev, "host.name", m.group("node"))
        cat, types = _CATEGORY.get(rtype, (["host"], ["info"]))
        if rtype == "SYSCALL":
            if kv.get("syscall") in _EXEC_SYSCALLS:
                cat, types = ["process"], ["start"]
            else:
                cat, types = ["process"], ["info"]
        categorize(ev, cat, types, rtype.lower())
        res = kv.get("res") or kv.get("success")
        if res in ("success", "yes", "1"):
            set_outcome(ev, True)
        elif res in ("failed", "no", "0"):
            set_outcome(ev, False)
        user = kv.get("acct") or kv.get("id")
        if _known(user) and not (user or "").isdigit():
            set_field(ev, "user.name", user)
        if _known(kv.get("uid")):
            set_field(ev, "user.id", kv["uid"])
        if _known(kv.get("auid")):
            set_field(ev, "user.audit.id", kv["auid"])
        if _known(kv.get("euid")):
            set_field(ev, "user.effective.id", kv["euid"])
        pid = to_int(kv.get("pid"))
        if pid is not None:
            set_field(ev, "process.pid", pid)
        ppid = to_int(kv.get("ppid"))
        if ppid is not None:
            set_field(ev, "process.parent.pid", ppid)
        if _known(kv.get("exe")):
            set_field(ev, "process.executable", kv["exe"])
        if _known(kv.get("comm")):
            set_field(ev, "process.name", kv["comm"])
        addr = kv.get("addr")
        if _known(addr):
            try:
                set_field(ev, "source.ip", str(ipaddress.ip_address(addr)))
            except ValueError:
                pass
        if _known(kv.get("hostname")) and kv["hostname"] != addr:
            set_field(ev, "source.domain", kv["hostname"])
        if rtype == "EXECVE":
            argc = to_int(kv.get("argc")) or 0
            args = [kv[f"a{i}"] for i in range(argc) if f"a{i}" in kv]
            if args:
                set_field(ev, "process.args", args)
                set_field(ev, "process.command_line", " ".join(args))
        elif rtype == "PROCTITLE" and kv.get("proctitle"):
            set_field(ev, "process.command_line", kv["proctitle"])
        elif rtype == "USER_CMD" and kv.get("cmd"):
            set_field(ev, "process.command_line", kv["cmd"])
        if rtype == "PATH" and _known(kv.get("name")):
            set_field(ev, "file.path", kv["name"])
        if kv.get("key") and _known(kv["key"]):
            add_tag(ev, f"audit_key:{kv['key']}")
        return True


PARSER = AuditdParser()
