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

__all__ = ["AuditdParser", "PARSER", "syscall_name"]

_HEAD_RE = re.compile(r"(?:node=(?P<node>\S+) )?type=(?P<type>[A-Z0-9_]+) msg=audit\((?P<ts>\d+(?:\.\d+)?):(?P<seq>\d+)\):\s?(?P<body>.*)$", re.S)
_KV_RE = re.compile(r"""([\w-]+)=('[^']*'|"[^"]*"|\S*)""")
_HEX_RE = re.compile(r"^(?:[0-9A-F]{2})+$")
_HEX_KEYS = frozenset({"proctitle", "cmd", "name", "comm", "exe", "cwd", "path", "data", "acct", "old-name", "new-name"})
_ARG_RE = re.compile(r"a\d+$")

_CATEGORY: dict[str, tuple[list[str], list[str]]] = {}
# Record type -> ECS category/type, after go-libaudit's normalisation (the table Elastic's auditd
# pipeline is generated from), except where it writes a type ECS does not allow ("stop" -> "end").
for _t in ("USER_LOGIN", "LOGIN"):
    _CATEGORY[_t] = (["authentication"], ["start"])
_CATEGORY["USER_LOGOUT"] = (["authentication"], ["end"])
for _t in ("USER_AUTH", "USER_ACCT", "USER_ERR", "CRED_ACQ", "CRED_DISP", "CRED_REFR", "GRP_AUTH",
           "ANOM_LOGIN_FAILURES"):
    _CATEGORY[_t] = (["authentication"], ["info"])
_CATEGORY["USER_START"] = (["session"], ["start"])
_CATEGORY["USER_END"] = (["session"], ["end"])
_CATEGORY["ADD_USER"] = (["iam"], ["user", "creation"])
_CATEGORY["DEL_USER"] = (["iam"], ["user", "deletion"])
_CATEGORY["ADD_GROUP"] = (["iam"], ["group", "creation"])
_CATEGORY["DEL_GROUP"] = (["iam"], ["group", "deletion"])
for _t in ("USER_MGMT", "USER_CHAUTHTOK", "ROLE_ASSIGN", "ROLE_REMOVE"):
    _CATEGORY[_t] = (["iam"], ["user", "change"])
for _t in ("GRP_MGMT", "GRP_CHAUTHTOK"):
    _CATEGORY[_t] = (["iam"], ["group", "change"])
for _t in ("ACCT_LOCK", "ACCT_UNLOCK"):
    _CATEGORY[_t] = (["iam"], ["user", "info"])
for _t in ("EXECVE", "USER_CMD", "PROCTITLE", "ANOM_EXEC"):
    _CATEGORY[_t] = (["process"], ["start"])
for _t in ("PATH", "CWD"):
    _CATEGORY[_t] = (["file"], ["info"])
for _t in ("CONFIG_CHANGE", "DAEMON_CONFIG", "MAC_POLICY_LOAD", "MAC_STATUS", "MAC_CONFIG_CHANGE", "NETFILTER_CFG",
           "USER_MAC_CONFIG_CHANGE", "FEATURE_CHANGE"):
    _CATEGORY[_t] = (["configuration"], ["change"])
for _t in ("SERVICE_START", "SERVICE_STOP", "DAEMON_START", "DAEMON_END", "DAEMON_ABORT"):
    _CATEGORY[_t] = (["process"], ["start" if _t.endswith("START") else "end"])
_CATEGORY["ANOM_ABEND"] = (["process"], ["end"])
_CATEGORY["KERN_MODULE"] = (["driver"], ["start"])
_CATEGORY["SYSTEM_BOOT"] = (["host"], ["start"])
_CATEGORY["SYSTEM_SHUTDOWN"] = (["host"], ["end"])
_CATEGORY["SYSTEM_RUNLEVEL"] = (["host"], ["change"])
_CATEGORY["SOFTWARE_UPDATE"] = (["package"], ["info"])
for _t in ("AVC", "SELINUX_ERR", "ANOM_PROMISCUOUS", "ANOM_MK_EXEC", "SECCOMP"):
    _CATEGORY[_t] = (["intrusion_detection"], ["info"])

_SYSCALL_KIND: dict[str, tuple[list[str], list[str]]] = {}
"""System call name -> ECS category/type (go-libaudit's grouping); unlisted calls are process/info."""
for _names, _kind in (
    ("unlink unlinkat rmdir", (["file"], ["deletion"])),
    ("creat mkdir mkdirat mknod mknodat symlink symlinkat link linkat", (["file"], ["creation"])),
    ("rename renameat renameat2 chmod fchmod fchmodat chown fchown fchownat lchown truncate ftruncate fallocate "
     "setxattr lsetxattr fsetxattr removexattr lremovexattr fremovexattr write", (["file"], ["change"])),
    ("open openat access faccessat stat lstat fstat newfstatat statfs fstatfs readlink readlinkat read "
     "getxattr lgetxattr fgetxattr utime utimes utimensat futimesat", (["file"], ["info"])),
    ("connect accept accept4", (["network"], ["connection", "start"])),
    ("bind listen", (["network"], ["start"])),
    ("sendto sendmsg sendmmsg recvfrom recvmsg recvmmsg", (["network"], ["connection", "info"])),
    ("execve execveat", (["process"], ["start"])),
    ("kill tkill tgkill", (["process"], ["end"])),
    ("setuid setgid setreuid setregid setresuid setresgid setfsuid setfsgid", (["process"], ["change"])),
    ("init_module finit_module", (["driver"], ["start"])),
    ("delete_module", (["driver"], ["end"])),
    ("adjtimex settimeofday clock_settime stime sethostname setdomainname", (["host"], ["change"])),
    ("mount", (["file"], ["creation"])),
    ("umount umount2", (["file"], ["deletion"])),
):
    for _n in _names.split():
        _SYSCALL_KIND[_n] = _kind
_X86_64 = {
    "0": "read", "1": "write", "2": "open", "4": "stat", "5": "fstat", "6": "lstat", "21": "access", "42": "connect",
    "43": "accept", "44": "sendto", "45": "recvfrom", "49": "bind", "50": "listen", "59": "execve", "62": "kill",
    "76": "truncate", "77": "ftruncate", "82": "rename", "83": "mkdir", "84": "rmdir", "85": "creat", "86": "link",
    "87": "unlink", "88": "symlink", "90": "chmod", "91": "fchmod", "92": "chown", "93": "fchown", "94": "lchown",
    "105": "setuid", "106": "setgid", "113": "setreuid", "114": "setregid", "117": "setresuid", "119": "setresgid",
    "159": "adjtimex", "164": "settimeofday", "165": "mount", "166": "umount2", "170": "sethostname",
    "175": "init_module", "176": "delete_module", "188": "setxattr", "200": "tkill", "227": "clock_settime",
    "234": "tgkill", "257": "openat", "258": "mkdirat", "260": "fchownat", "263": "unlinkat", "264": "renameat",
    "265": "linkat", "266": "symlinkat", "268": "fchmodat", "288": "accept4", "313": "finit_module",
    "316": "renameat2", "322": "execveat",
}
"""x86_64 (``arch=c000003e``) system call numbers for the calls above, for logs without the enriched ``SYSCALL=``."""
_USER_SPACE = ("USER_", "CRED_", "LOGIN", "ACCT_", "ADD_", "DEL_", "GRP_", "ROLE_")
_TARGETED = frozenset({"ADD_USER", "DEL_USER", "USER_MGMT", "USER_CHAUTHTOK", "ROLE_ASSIGN", "ROLE_REMOVE"})
_GROUP_TARGETED = frozenset({"ADD_GROUP", "DEL_GROUP", "GRP_MGMT", "GRP_CHAUTHTOK"})
_ID_FIELDS = (("uid", "user.id", "UID", "user.name"), ("gid", "user.group.id", "GID", "user.group.name"),
              ("euid", "user.effective.id", "EUID", "user.effective.name"),
              ("egid", "user.effective.group.id", "EGID", "user.effective.group.name"),
              ("suid", "user.saved.id", "SUID", "user.saved.name"),
              ("sgid", "user.saved.group.id", "SGID", "user.saved.group.name"),
              ("fsuid", "user.filesystem.id", "FSUID", "user.filesystem.name"),
              ("fsgid", "user.filesystem.group.id", "FSGID", "user.filesystem.group.name"))
"""A process record's ids (and the names the enriched log format adds in upper case) -> ECS user fields."""


def syscall_name(kv: dict[str, str]) -> str | None:
    """The system call's name: the enriched ``SYSCALL=``, else the x86_64 number looked up."""
    name = kv.get("SYSCALL")
    if name:
        return name
    if kv.get("arch") == "c000003e":
        return _X86_64.get(kv.get("syscall", ""))
    return None


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
    order = 50
    body_sniff = True
    line_sniff = True
    datasets = ("auditd.log",)
    log_paths = ("/var/log/audit/",)
    programs = frozenset({"audit", "audispd", "auditd", "audisp-syslog"})

    def sniff(self, message: str) -> bool:
        return "msg=audit(" in message[:120] and _HEAD_RE.match(message) is not None

    def sniff_line(self, line: str) -> bool:
        return line.lstrip().startswith(("type=", "node=")) and "msg=audit(" in line[:200]

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
        log: dict[str, object] = {"record_type": rtype, "sequence": to_int(m.group("seq"))}
        log.update(kv)
        ev["auditd"] = {"log": log}
        if m.group("node"):
            set_field(ev, "host.name", m.group("node"))
        cat, types = _CATEGORY.get(rtype, (["host"], ["info"]))
        if rtype == "SYSCALL":
            cat, types = _SYSCALL_KIND.get(syscall_name(kv) or "", (["process"], ["info"]))
        categorize(ev, cat, types, rtype.lower())
        res = kv.get("res") or kv.get("success")
        if res in ("success", "yes", "1"):
            set_outcome(ev, True)
        elif res in ("failed", "no", "0"):
            set_outcome(ev, False)
        if rtype.startswith(_USER_SPACE):
            _user_space_users(ev, rtype, kv)
        else:
            for key, field, name_key, name_field in _ID_FIELDS:
                if _known(kv.get(key)):
                    set_field(ev, field, kv[key])
                if _known(kv.get(name_key)) and not kv[name_key].isdigit():
                    set_field(ev, name_field, kv[name_key])
            user = kv.get("acct") or kv.get("id")
            if _known(user) and not (user or "").isdigit():
                set_field(ev, "user.name", user)
        if _known(kv.get("auid")):
            set_field(ev, "user.audit.id", kv["auid"])
        if _known(kv.get("AUID")) and not kv["AUID"].isdigit():
            set_field(ev, "user.audit.name", kv["AUID"])
        if _known(kv.get("terminal")):
            set_field(ev, "user.terminal", kv["terminal"])
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
                set_field(ev, "source.address", addr)
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


def _user_space_users(ev: Event, rtype: str, kv: dict[str, str]) -> None:
    """Users of a user-space record (PAM, shadow-utils, sudo...), as go-libaudit reads them.

    ``pid``/``uid`` there are the reporting daemon's (sshd runs as root), so the person
    is the login uid ``auid`` (``user.id``). The account the record is about (``acct``,
    or the numeric ``id``) is the one logged into (``user.name`` and
    ``user.effective.name``), or for account management the one changed
    (``user.target.*``, ``group.*``)."""
    if _known(kv.get("auid")):
        set_field(ev, "user.id", kv["auid"])
    acct = kv.get("acct") if _known(kv.get("acct")) else None
    num = kv.get("id") if _known(kv.get("id")) else None
    if rtype in _TARGETED or rtype in _GROUP_TARGETED:
        base = "user.target" if rtype in _TARGETED else "group"
        if acct and not acct.isdigit():
            set_field(ev, f"{base}.name", acct)
        if num and num.isdigit():
            set_field(ev, f"{base}.id", num)
        return
    name = acct or (num if num and not num.isdigit() else None)
    if name and not name.isdigit():
        set_field(ev, "user.name", name)
        set_field(ev, "user.effective.name", name)
    elif num or _known(kv.get("uid")):
        set_field(ev, "user.effective.id", num or kv["uid"])


PARSER = AuditdParser()
