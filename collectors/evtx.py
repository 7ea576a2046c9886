"""Windows EVTX files to ECS events, laid out the way Winlogbeat lays them out.

Why Winlogbeat's layout: it is what Sigma's ECS pipelines, Kibana's Windows dashboards
and analysts already expect (``winlog.event_data.Image``, ``event.code: "4624"``), so an
EVTX file read offline and the same log shipped live by Winlogbeat look alike to every
later stage. Parsing is done by the ``evtx`` package (Rust, JSON output); each record's
JSON is decoded with orjson and mapped here.

``event.original`` is **not** kept by default: the record's JSON is about as large as the
ECS document itself, so keeping it would double storage, and for EVTX input the file is
the original evidence anyway (``log.file.path`` + ``winlog.record_id`` point back to the
exact record). Pass ``keep_original=True`` when the raw record must travel with the event.

Example::

    reader = EvtxReader("Security.evtx")
    for event in reader:
        print(event["event"]["code"], event["winlog"]["event_data"].get("TargetUserName"))
    print(reader.report)          # records read, events produced, failures with reasons
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from core.events import Event

__all__ = [
    "EvtxError",
    "EvtxReport",
    "EvtxReader",
    "read_evtx",
    "record_to_ecs",
    "channel_dataset",
]


class EvtxError(Exception):
    """The file cannot be read as EVTX at all (missing, not EVTX, corrupt header)."""


@dataclass
class EvtxReport:
    """What reading one file did: records seen, events produced, and each failure's reason."""

    path: str
    records: int = 0
    events: int = 0
    failed: int = 0
    failures: list[tuple[int | None, str]] = field(default_factory=list)
    """(record id or None, reason); kept up to ``max_failures`` entries, ``failed`` counts all."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "records": self.records,
            "events": self.events,
            "failed": self.failed,
            "failures": [{"record_id": r, "reason": why} for r, why in self.failures],
        }


# Channel -> (event.module, event.dataset). Other channels get module "windows" and a
# dataset derived from the channel name (see channel_dataset).
_CHANNEL_DATASETS: dict[str, tuple[str, str]] = {
    "microsoft-windows-sysmon/operational": ("sysmon", "windows.sysmon_operational"),
    "security": ("windows", "windows.security"),
    "system": ("windows", "windows.system"),
    "application": ("windows", "windows.application"),
    "microsoft-windows-powershell/operational": ("windows", "windows.powershell_operational"),
    "powershellcore/operational": ("windows", "windows.powershell_operational"),
    "windows powershell": ("windows", "windows.powershell"),
    "forwardedevents": ("windows", "windows.forwarded"),
}

_SLUG_RE = re.compile(r"[^a-z0-9]+")


def channel_dataset(channel: str) -> tuple[str, str]:
    """``(event.module, event.dataset)`` for a channel name (case-insensitive)."""
    key = channel.lower()
    known = _CHANNEL_DATASETS.get(key)
    if known:
        return known
    slug = _SLUG_RE.sub("_", key).strip("_") or "unknown"
    return "windows", f"windows.{slug}"


_LEVELS = {0: "information", 1: "critical", 2: "error", 3: "warning", 4: "information", 5: "verbose"}

# (channel, event id) -> (event.action, event.category, event.type) as Winlogbeat's
# security and sysmon modules set them, for the events analysts filter on most.
_SECURITY_ACTIONS: dict[str, tuple[str, list[str], list[str]]] = {
    "4624": ("logged-in", ["authentication"], ["start"]),
    "4625": ("logon-failed", ["authentication"], ["start"]),
    "4634": ("logged-out", ["authentication"], ["end"]),
    "4647": ("logged-out", ["authentication"], ["end"]),
    "4648": ("logged-in-explicit", ["authentication"], ["start"]),
    "4672": ("logged-in-special", ["iam"], ["admin"]),
    "4688": ("created-process", ["process"], ["start"]),
    "4689": ("exited-process", ["process"], ["end"]),
    "4720": ("added-user-account", ["iam"], ["user", "creation"]),
    "4726": ("deleted-user-account", ["iam"], ["user", "deletion"]),
    "4732": ("added-member-to-group", ["iam"], ["group", "change"]),
    "4768": ("kerberos-authentication-ticket-requested", ["authentication"], ["start"]),
    "4769": ("kerberos-service-ticket-requested", ["authentication"], ["start"]),
    "4776": ("credential-validated", ["authentication"], ["start"]),
    "1102": ("audit-log-cleared", ["iam"], ["admin"]),
}
_SYSMON_ACTIONS: dict[str, tuple[str, list[str], list[str]]] = {
    "1": ("Process Create", ["process"], ["start"]),
    "2": ("File creation time changed", ["file"], ["change"]),
    "3": ("Network connection detected", ["network"], ["connection", "start"]),
    "5": ("Process terminated", ["process"], ["end"]),
    "6": ("Driver loaded", ["driver"], ["start"]),
    "7": ("Image loaded", ["process"], ["change"]),
    "8": ("CreateRemoteThread detected", ["process"], ["change"]),
    "9": ("RawAccessRead detected", ["process"], ["access"]),
    "10": ("Process accessed", ["process"], ["access"]),
    "11": ("File created", ["file"], ["creation"]),
    "12": ("Registry object added or deleted", ["configuration", "registry"], ["change"]),
    "13": ("Registry value set", ["configuration", "registry"], ["change"]),
    "14": ("Registry object renamed", ["configuration", "registry"], ["change"]),
    "15": ("File stream created", ["file"], ["access"]),
    "17": ("Pipe Created", ["file"], ["creation"]),
    "18": ("Pipe Connected", ["file"], ["access"]),
    "22": ("Dns query", ["network"], ["connection", "protocol", "info"]),
    "23": ("File Delete archived", ["file"], ["deletion"]),
    "26": ("File Delete logged", ["file"], ["deletion"]),
}


# Logon type numbers as Winlogbeat's security module names them (winlog.logon.type).
_LOGON_TYPES = {
    "0": "System",
    "2": "Interactive",
    "3": "Network",
    "4": "Batch",
    "5": "Service",
    "7": "Unlock",
    "8": "NetworkCleartext",
    "9": "NewCredentials",
    "10": "RemoteInteractive",
    "11": "CachedInteractive",
    "12": "CachedRemoteInteractive",
    "13": "CachedUnlock",
}


def _text(value: Any) -> Any:
    """EVTX JSON puts attributes beside a value as ``{"#attributes": .., "#text": v}``."""
    if isinstance(value, dict) and "#text" in value:
        return value["#text"]
    return value


def _as_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(_as_str(v) for v in value)
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


def _event_data(raw: Any) -> dict[str, str]:
    """EventData as Winlogbeat keeps it: every field a string, unnamed data as paramN."""
    out: dict[str, str] = {}
    if not isinstance(raw, dict):
        if raw is not None and raw != "":
            out["param1"] = _as_str(raw)
        return out
    for key, value in raw.items():
        if key == "#attributes":
            continue
        if key == "Data":
            # Unnamed <Data> elements: a single value or a list under "#text".
            inner = _text(value)
            if isinstance(inner, list):
                for i, item in enumerate(inner, 1):
                    out[f"param{i}"] = _as_str(_text(item))
            elif isinstance(inner, dict):
                for k2, v2 in inner.items():
                    if k2 != "#attributes":
                        out[k2] = _as_str(_text(v2))
            elif inner is not None:
                out["param1"] = _as_str(inner)
            continue
        if key == "Binary":
            if value is not None:
                out["Binary"] = _as_str(_text(value))
            continue
        out[key] = _as_str(_text(value))
    return out


def _user_data(raw: Any) -> dict[str, str]:
    """UserData holds one provider-defined element; its children become the fields."""
    out: dict[str, str] = {}
    if not isinstance(raw, dict):
        return out
    for name, element in raw.items():
        if name == "#attributes":
            continue
        out["xml_name"] = name
        if isinstance(element, dict):
            for k, v in element.items():
                if k != "#attributes":
                    out[k] = _as_str(_text(v))
        elif element is not None:
            out[name] = _as_str(element)
    return out


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value:
        try:
            return int(value, 16) if value.lower().startswith("0x") else int(value)
        except ValueError:
            return None
    return None


def _basename(path: str) -> str:
    return path.replace("/", "\\").rsplit("\\", 1)[-1]


def _split_user(value: str) -> tuple[str | None, str]:
    if "\\" in value:
        domain, name = value.split("\\", 1)
        return domain, name
    return None, value


def _hashes(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in value.split(","):
        if "=" in part:
            algo, digest = part.split("=", 1)
            out[algo.strip().lower().replace("-", "")] = digest.strip().lower()
    return out


def _set_process(ev: Event, ed: dict[str, str], prefix: str = "") -> None:
    """Sysmon-style process fields (Image, CommandLine, ProcessId...) to ECS process.*."""
    proc: dict[str, Any] = {}
    image = ed.get(prefix + "Image")
    if image:
        proc["executable"] = image
        proc["name"] = _basename(image)
    if ed.get(prefix + "CommandLine"):
        proc["command_line"] = ed[prefix + "CommandLine"]
    pid = _int(ed.get(prefix + "ProcessId"))
    if pid is not None:
        proc["pid"] = pid
    if ed.get(prefix + "ProcessGuid"):
        proc["entity_id"] = ed[prefix + "ProcessGuid"]
    if proc:
        ev["process"] = proc


def _promote(ev: Event, channel_l: str, code: str, ed: dict[str, str]) -> None:
    """The common ECS promotions Winlogbeat's sysmon and security modules make."""
    if channel_l == "microsoft-windows-sysmon/operational":
        _promote_sysmon(ev, code, ed)
    elif channel_l == "security":
        _promote_security(ev, code, ed)
    elif code == "4104" and "powershell" in channel_l and ed.get("ScriptBlockText") is not None:
        ev["powershell"] = {
            "file": {"script_block_text": ed["ScriptBlockText"], "script_block_id": ed.get("ScriptBlockId", "")},
        }
        if ed.get("Path"):
            ev["file"] = {"path": ed["Path"], "name": _basename(ed["Path"])}


def _promote_sysmon(ev: Event, code: str, ed: dict[str, str]) -> None:
    """Sysmon: the event id's action and categories, the process, then what the id is about."""
    evn = ev["event"]
    act = _SYSMON_ACTIONS.get(code)
    if act:
        evn["action"], evn["category"], evn["type"] = act[0], list(act[1]), list(act[2])
    if code in ("10", "8"):
        src = ed.get("SourceImage")
        if src:
            ev["process"] = {"executable": src, "name": _basename(src)}
            pid = _int(ed.get("SourceProcessId"))
            if pid is not None:
                ev["process"]["pid"] = pid
    else:
        _set_process(ev, ed)
    if code == "1":
        _sysmon_process_create(ev, ed)
    if ed.get("User"):
        domain, name = _split_user(ed["User"])
        ev["user"] = {"name": name, **({"domain": domain} if domain else {})}
    if code == "3":
        _sysmon_network(ev, ed)
    elif code in ("11", "23", "26", "2", "15") and ed.get("TargetFilename"):
        ev["file"] = {"path": ed["TargetFilename"], "name": _basename(ed["TargetFilename"])}
    elif code in ("12", "13", "14") and ed.get("TargetObject"):
        reg: dict[str, Any] = {"path": ed["TargetObject"]}
        if ed.get("Details"):
            reg["data"] = {"strings": [ed["Details"]]}
        ev["registry"] = reg
    elif code == "22" and ed.get("QueryName"):
        ev["dns"] = {"question": {"name": ed["QueryName"]}}
    elif code in ("7", "6") and ed.get("ImageLoaded"):
        ev["file"] = {"path": ed["ImageLoaded"], "name": _basename(ed["ImageLoaded"])}


def _process_node(ed: dict[str, str], image: str, pid: str, command_line: str | None = None) -> dict[str, Any]:
    """ECS ``process`` fields (executable, name, command line, pid) from the named EventData keys."""
    node: dict[str, Any] = {}
    if ed.get(image):
        node["executable"] = ed[image]
        node["name"] = _basename(ed[image])
    if command_line and ed.get(command_line):
        node["command_line"] = ed[command_line]
    n = _int(ed.get(pid))
    if n is not None:
        node["pid"] = n
    return node


def _sysmon_process_create(ev: Event, ed: dict[str, str]) -> None:
    """Sysmon 1 (process create): parent, working directory, PE name and hashes."""
    proc = ev.setdefault("process", {})
    parent = _process_node(ed, "ParentImage", "ParentProcessId", "ParentCommandLine")
    if parent:
        proc["parent"] = parent
    if ed.get("CurrentDirectory"):
        proc["working_directory"] = ed["CurrentDirectory"]
    if ed.get("OriginalFileName"):
        proc["pe"] = {"original_file_name": ed["OriginalFileName"]}
    if ed.get("Hashes"):
        proc["hash"] = _hashes(ed["Hashes"])


def _sysmon_network(ev: Event, ed: dict[str, str]) -> None:
    """Sysmon 3 (network connection): both ends and the transport."""
    for side, ecs in (("Source", "source"), ("Destination", "destination")):
        node: dict[str, Any] = {}
        if ed.get(side + "Ip"):
            node["ip"] = ed[side + "Ip"]
        port = _int(ed.get(side + "Port"))
        if port is not None:
            node["port"] = port
        if ed.get(side + "Hostname"):
            node["domain"] = ed[side + "Hostname"]
        if node:
            ev[ecs] = node
    if ed.get("Protocol"):
        ev["network"] = {"transport": ed["Protocol"].lower()}


def _promote_security(ev: Event, code: str, ed: dict[str, str]) -> None:
    """The Security channel: logons, process creation, else the acting subject."""
    evn = ev["event"]
    act = _SECURITY_ACTIONS.get(code)
    if act:
        evn["action"], evn["category"], evn["type"] = act[0], list(act[1]), list(act[2])
    if code in ("4624", "4625", "4634", "4647", "4648", "4768", "4769", "4776"):
        _security_logon(ev, evn, code, ed)
    elif code == "4688":
        _security_process_created(ev, ed)
    elif ed.get("SubjectUserName") and ed["SubjectUserName"] != "-":
        ev["user"] = {"name": ed["SubjectUserName"]}
        if ed.get("SubjectDomainName"):
            ev["user"]["domain"] = ed["SubjectDomainName"]


def _security_logon(ev: Event, evn: dict[str, Any], code: str, ed: dict[str, str]) -> None:
    """Logon/logoff and Kerberos/NTLM events: target user, source, logon type and outcome."""
    name = ed.get("TargetUserName")
    if name:
        ev["user"] = {"name": name}
        if ed.get("TargetDomainName"):
            ev["user"]["domain"] = ed["TargetDomainName"]
        if ed.get("TargetUserSid"):
            ev["user"]["id"] = ed["TargetUserSid"]
    src: dict[str, Any] = {}
    ip = ed.get("IpAddress")
    if ip and ip != "-":
        src["ip"] = ip.removeprefix("::ffff:")
        port = _int(ed.get("IpPort"))
        if port:
            src["port"] = port
    if ed.get("WorkstationName") and ed["WorkstationName"] != "-":
        src["domain"] = ed["WorkstationName"]
    if src:
        ev["source"] = src
    logon: dict[str, str] = {}
    if ed.get("LogonType"):
        logon["type"] = _LOGON_TYPES.get(ed["LogonType"], ed["LogonType"])
    if ed.get("TargetLogonId"):
        logon["id"] = ed["TargetLogonId"]
    if logon:
        ev["winlog"]["logon"] = logon
    if code in ("4624", "4648"):
        evn["outcome"] = "success"
    elif code == "4625":
        evn["outcome"] = "failure"


def _security_process_created(ev: Event, ed: dict[str, str]) -> None:
    """4688: the new process, its parent and the subject that started it."""
    proc = _process_node(ed, "NewProcessName", "NewProcessId", "CommandLine")
    parent = _process_node(ed, "ParentProcessName", "ProcessId")
    if parent:
        proc["parent"] = parent
    if proc:
        ev["process"] = proc
    if ed.get("SubjectUserName"):
        ev["user"] = {"name": ed["SubjectUserName"]}
        if ed.get("SubjectDomainName"):
            ev["user"]["domain"] = ed["SubjectDomainName"]


def record_to_ecs(record: dict[str, Any], *, path: str | None = None, original: str | None = None) -> Event:
    """Map one decoded EVTX record (``{"Event": {"System": .., "EventData": ..}}``) to ECS.

    Raises ``ValueError`` (with the reason) when the record lacks what every event has.
    """
    root = record.get("Event") if isinstance(record, dict) else None
    if not isinstance(root, dict) or not isinstance(root.get("System"), dict):
        raise ValueError("record has no Event/System element")
    system = root["System"]
    provider_node = system.get("Provider") or {}
    pattrs = provider_node.get("#attributes", {}) if isinstance(provider_node, dict) else {}
    provider = pattrs.get("Name") or pattrs.get("EventSourceName") or ""
    eid = _text(system.get("EventID"))
    if eid is None:
        raise ValueError("record has no System/EventID")
    code = str(eid)
    channel = _as_str(system.get("Channel"))
    computer = _as_str(system.get("Computer"))
    tc = system.get("TimeCreated") or {}
    ts = tc.get("#attributes", {}).get("SystemTime") if isinstance(tc, dict) else None
    if not ts:
        raise ValueError("record has no System/TimeCreated/@SystemTime")
    module, dataset = channel_dataset(channel)
    winlog: dict[str, Any] = {
        "channel": channel,
        "event_id": code,
        "provider_name": provider,
        "computer_name": computer,
        "record_id": system.get("EventRecordID"),
    }
    if pattrs.get("Guid"):
        winlog["provider_guid"] = "{" + pattrs["Guid"].strip("{}") + "}"
    for key, target in (("Version", "version"), ("Task", "task"), ("Opcode", "opcode")):
        val = system.get(key)
        if val is not None:
            winlog[target] = val
    if system.get("Keywords") is not None:
        winlog["keywords"] = [system["Keywords"]]
    execution = system.get("Execution")
    if isinstance(execution, dict):
        ea = execution.get("#attributes", {})
        proc: dict[str, Any] = {}
        if ea.get("ProcessID") is not None:
            proc["pid"] = ea["ProcessID"]
        if ea.get("ThreadID") is not None:
            proc["thread"] = {"id": ea["ThreadID"]}
        if proc:
            winlog["process"] = proc
    security = system.get("Security")
    if isinstance(security, dict) and security.get("#attributes", {}).get("UserID"):
        winlog["user"] = {"identifier": security["#attributes"]["UserID"]}
    ed = _event_data(root.get("EventData")) if "EventData" in root else {}
    if ed:
        winlog["event_data"] = ed
    if root.get("UserData") is not None:
        ud = _user_data(root["UserData"])
        if ud:
            winlog["user_data"] = ud
    event: dict[str, Any] = {
        "kind": "event",
        "code": code,
        "provider": provider,
        "module": module,
        "dataset": dataset,
    }
    level = system.get("Level")
    ev: Event = {
        "@timestamp": _normalize_ts(ts),
        "event": event,
        "host": {"name": computer},
        "winlog": winlog,
    }
    if isinstance(level, int) and level in _LEVELS:
        ev["log"] = {"level": _LEVELS[level]}
    if path is not None:
        ev.setdefault("log", {})["file"] = {"path": path}
    _promote(ev, channel.lower(), code, ed or winlog.get("user_data", {}))
    if original is not None:
        event["original"] = original
    return ev


def _normalize_ts(ts: str) -> str:
    """``2020-10-05T20:43:58.351744Z`` -> ECS millisecond form ``2020-10-05T20:43:58.351Z``."""
    if len(ts) > 23 and ts[19] == "." and ts.endswith("Z"):
        return ts[:23] + "Z"
    if len(ts) == 20 and ts.endswith("Z"):
        return ts[:19] + ".000Z"
    return ts


class EvtxReader:
    """Iterate one EVTX file as ECS events; failures are counted in :attr:`report`.

    A file that is not EVTX (or is unreadable) raises :class:`EvtxError` when iteration
    starts; a record inside that cannot be decoded or mapped is recorded and skipped.
    """

    def __init__(self, path: str | os.PathLike[str], *, keep_original: bool = False, max_failures: int = 100):
        self.path = str(path)
        self.keep_original = keep_original
        self.max_failures = max_failures
        self.report = EvtxReport(self.path)

    def _fail(self, record_id: int | None, reason: str) -> None:
        self.report.failed += 1
        if len(self.report.failures) < self.max_failures:
            self.report.failures.append((record_id, reason))

    def __iter__(self) -> Iterator[Event]:
        import evtx  # imported here so importing the module costs nothing for non-EVTX users

        p = Path(self.path)
        if not p.is_file():
            raise EvtxError(f"{self.path}: no such file; give the path of an .evtx file")
        with p.open("rb") as fh:
            magic = fh.read(8)
        if magic != b"ElfFile\x00":
            raise EvtxError(
                f"{self.path}: not an EVTX file (header {magic[:8]!r}, expected b'ElfFile\\x00'); "
                "export the log with wevtutil epl or Event Viewer 'Save As .evtx'"
            )
        try:
            parser = evtx.PyEvtxParser(self.path)
            records = parser.records_json()
        except (OSError, RuntimeError, ValueError) as exc:
            raise EvtxError(f"{self.path}: cannot open as EVTX: {exc}") from exc
        keep = self.keep_original
        path = self.path
        while True:
            try:
                rec = next(records)
            except StopIteration:
                break
            except (RuntimeError, OSError, ValueError) as exc:
                # The evtx crate reports a broken record or chunk and continues after it.
                self.report.records += 1
                self._fail(None, f"undecodable record: {exc}")
                continue
            self.report.records += 1
            rid = rec.get("event_record_id")
            data = rec.get("data", "")
            try:
                doc = orjson.loads(data)
                ev = record_to_ecs(doc, path=path, original=data if keep else None)
            except (orjson.JSONDecodeError, ValueError, TypeError, AttributeError) as exc:
                self._fail(rid, f"{type(exc).__name__}: {exc}")
                continue
            self.report.events += 1
            yield ev


def read_evtx(path: str | os.PathLike[str], *, keep_original: bool = False) -> Iterator[Event]:
    """Shortcut for ``iter(EvtxReader(path))`` when the failure report is not needed."""
    return iter(EvtxReader(path, keep_original=keep_original))
