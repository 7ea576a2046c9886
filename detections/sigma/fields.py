"""Where a Sigma field name is found in one of our ECS events: field mapping as data.

Windows rules name EVTX fields (``Image``, ``TargetUserName``) and system fields
(``EventID``, ``Channel``); our EVTX collector and Winlogbeat keep those under
``winlog.event_data`` / ``winlog.user_data`` and ``winlog.*``. Rules for other log
sources use Sigma's generic names (``c-ip``, ``cs-method``, ``CommandLine`` on Linux)
or ECS names directly (our own pack): generic names are mapped by the tables below, ECS
names pass through unchanged.

A resolved field is a *key* string the matcher's event view understands:

* ``@Name``         a Windows event-data field (event_data, then user_data);
* ``a.b.c``         an ECS path;
* ``a.b|Name``      alternatives tried in order (first present wins).
"""
from __future__ import annotations

__all__ = [
    "WINDOWS_SYSTEM_FIELDS",
    "WINDOWS_EVENT_ALIASES",
    "GENERIC_FIELDS",
    "CATEGORY_FIELDS",
    "resolve_field",
    "ZEEK_SERVICES",
    "FIELDS_VERSION",
]

FIELDS_VERSION = 2
"""Bumped whenever a table here changes meaning: compiled-plan caches are salted with it."""

# Sigma's names for the <System> part of a Windows event -> our ECS paths.
WINDOWS_SYSTEM_FIELDS: dict[str, str] = {
    "EventID": "winlog.event_id",
    "Channel": "winlog.channel",
    "Provider_Name": "winlog.provider_name",
    "Provider": "winlog.provider_name",
    "Provider_Guid": "winlog.provider_guid",
    "Computer": "winlog.computer_name",
    "EventRecordID": "winlog.record_id",
    "Keywords": "winlog.keywords",
    "Task": "winlog.task",
    "Opcode": "winlog.opcode",
    "Version": "winlog.version",
    "Level": "log.level",
}

# Per (channel lower-case, event id): Sigma (Sysmon taxonomy) field -> the field that
# event really has. Security 4688 carries process creation under other names.
WINDOWS_EVENT_ALIASES: dict[tuple[str, str], dict[str, str]] = {
    ("security", "4688"): {
        "Image": "NewProcessName",
        "ParentImage": "ParentProcessName",
        "ProcessId": "NewProcessId",
        "ParentProcessId": "ProcessId",
        "User": "SubjectUserName",
        "LogonId": "SubjectLogonId",
        "IntegrityLevel": "MandatoryLabel",
    },
}

# Generic Sigma names used by non-Windows log sources -> ECS (any category).
GENERIC_FIELDS: dict[str, str] = {
    "c-ip": "source.ip",
    "src_ip": "source.ip",
    "SourceIp": "source.ip",
    "dst_ip": "destination.ip",
    "DestinationIp": "destination.ip",
    "src_port": "source.port",
    "SourcePort": "source.port",
    "dst_port": "destination.port",
    "DestinationPort": "destination.port",
    "DestinationHostname": "destination.domain",
    "cs-method": "http.request.method",
    "c-uri": "url.original",
    "cs-uri": "url.original",
    "cs-uri-query": "url.query",
    "cs-uri-stem": "url.path",
    "cs-uri-extension": "url.extension",
    "cs-host": "url.domain",
    "r-dns": "url.domain",
    "cs-referrer": "http.request.referrer",
    "cs-referer": "http.request.referrer",
    "c-useragent": "user_agent.original",
    "cs-user-agent": "user_agent.original",
    "sc-status": "http.response.status_code",
    "cs-bytes": "http.request.bytes",
    "sc-bytes": "http.response.bytes",
    "cs-version": "http.version",
    "cs-username": "user.name",
    "Image": "process.executable",
    "CommandLine": "process.command_line",
    "ParentImage": "process.parent.executable",
    "ParentCommandLine": "process.parent.command_line",
    "CurrentDirectory": "process.working_directory",
    "ProcessId": "process.pid",
    "ParentProcessId": "process.parent.pid",
    "OriginalFileName": "process.pe.original_file_name",
    "User": "user.name",
    "TargetFilename": "file.path",
    "QueryName": "dns.question.name",
    "query": "dns.question.name",
    "answer": "dns.answers.data",
    "record_type": "dns.question.type",
    "Hostname": "host.name",
    "hostname": "host.name",
}

# Category-specific overrides of GENERIC_FIELDS (none needed yet beyond the generic table;
# kept as the place to put e.g. a proxy log's own meaning of a name).
CATEGORY_FIELDS: dict[str, dict[str, str]] = {
    "proxy": {"cs-host": "url.domain", "c-uri": "url.original"},
    # SigmaHQ rules/network/firewall: the verdict word (accept, forward...) is our event.action.
    "firewall": {"action": "event.action"},
}

# SigmaHQ rules/network/zeek name Zeek's own columns (``query``, ``qtype_name``, ``Z``,
# ``uri``...). The zeek parser keeps every column of log <kind> under ``zeek.<kind>.*``
# (conn as ``zeek.connection``), and the connection tuple in ECS.
ZEEK_SERVICES: dict[str, str] = {"conn": "connection"}
_ZEEK_TUPLE = {"id.orig_h": "source.ip", "id.orig_p": "source.port", "id.resp_h": "destination.ip",
               "id.resp_p": "destination.port", "uid": "zeek.session_id", "proto": "network.transport",
               "ts": "@timestamp"}


def resolve_field(name: str, *, windows: bool, category: str | None = None, product: str | None = None,
                  service: str | None = None) -> str:
    """The view key for Sigma field ``name`` in a rule of the given log source kind."""
    if product == "zeek" and not windows:
        if name in _ZEEK_TUPLE:
            return _ZEEK_TUPLE[name]
        kind = ZEEK_SERVICES.get(service or "", service or "")
        return f"zeek.{kind}.{name}" if kind else name
    if windows:
        system = WINDOWS_SYSTEM_FIELDS.get(name)
        if system:
            return system
        if "." in name or name == "@timestamp":  # an ECS path written into a Windows rule: use it as is
            return name
        return "@" + name
    if category and name in CATEGORY_FIELDS.get(category, {}):
        mapped = CATEGORY_FIELDS[category][name]
        return f"{mapped}|{name}"
    mapped = GENERIC_FIELDS.get(name)
    if mapped:
        # The ECS name first, the literal name for NDJSON that kept its source's names.
        return f"{mapped}|{name}"
    return name
