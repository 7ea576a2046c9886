"""Routing by log source: which events a rule can ever see, as data.

Most of a rule's cost is paid by events it could never match: a Sysmon process creation
rule need not look at a Security logon. Each rule's ``logsource`` (product, category,
service) is turned once into a :class:`Route`; each event gets a route key (its Windows
channel and event id, or its ECS OS and categories) and the engine caches, per key, the
rules whose route accepts it.

Unknown Windows services or categories *fail open* (the rule sees every Windows event
and its own conditions decide) and say so in the rule's warnings: a rule that silently
never runs is worse than one that runs too often.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SERVICE_CHANNELS",
    "CATEGORY_EVENTS",
    "CATEGORY_ECS",
    "Route",
    "route_for",
    "event_route_key",
    "PRODUCT_MODULES",
    "SERVICE_MODULES",
    "module_matches",
]

_SYSMON = "microsoft-windows-sysmon/operational"
_PS = ("microsoft-windows-powershell/operational", "powershellcore/operational")

# Sigma Windows service -> event log channels (the names SigmaHQ's logsource guide and
# pySigma's windows pipeline use). Kept here as data rather than imported from pySigma, so
# a cached start never imports pySigma (that import alone costs 0.1-0.3 s).
_SERVICE_CHANNELS: dict[str, list[str]] = {
    "security": ["Security"],
    "application": ["Application"],
    "system": ["System"],
    "sysmon": [_SYSMON],
    "powershell": list(_PS),
    "powershell-classic": ["Windows PowerShell"],
    "taskscheduler": ["Microsoft-Windows-TaskScheduler/Operational"],
    "wmi": ["Microsoft-Windows-WMI-Activity/Operational"],
    "dns-server": ["DNS Server"],
    "dns-server-audit": ["Microsoft-Windows-DNS-Server/Audit"],
    "dns-server-analytic": ["Microsoft-Windows-DNS-Server/Analytical"],
    "driver-framework": ["Microsoft-Windows-DriverFrameworks-UserMode/Operational"],
    "ntlm": ["Microsoft-Windows-NTLM/Operational"],
    "dhcp": ["Microsoft-Windows-DHCP-Server/Operational"],
    "msexchange-management": ["MSExchange Management"],
    "applocker": [
        "Microsoft-Windows-AppLocker/MSI and Script",
        "Microsoft-Windows-AppLocker/EXE and DLL",
        "Microsoft-Windows-AppLocker/Packaged app-Deployment",
        "Microsoft-Windows-AppLocker/Packaged app-Execution",
    ],
    "printservice-admin": ["Microsoft-Windows-PrintService/Admin"],
    "printservice-operational": ["Microsoft-Windows-PrintService/Operational"],
    "codeintegrity-operational": ["Microsoft-Windows-CodeIntegrity/Operational"],
    "smbclient-security": ["Microsoft-Windows-SmbClient/Security"],
    "smbclient-connectivity": ["Microsoft-Windows-SmbClient/Connectivity"],
    "smbserver-connectivity": ["Microsoft-Windows-SMBServer/Connectivity"],
    "firewall-as": ["Microsoft-Windows-Windows Firewall With Advanced Security/Firewall"],
    "bits-client": ["Microsoft-Windows-Bits-Client/Operational"],
    "windefend": ["Microsoft-Windows-Windows Defender/Operational"],
    "terminalservices-localsessionmanager": ["Microsoft-Windows-TerminalServices-LocalSessionManager/Operational"],
    "microsoft-servicebus-client": ["Microsoft-ServiceBus-Client"],
    "ldap_debug": ["Microsoft-Windows-LDAP-Client/Debug"],
    "security-mitigations": [
        "Microsoft-Windows-Security-Mitigations/Kernel Mode",
        "Microsoft-Windows-Security-Mitigations/User Mode",
    ],
    "diagnosis-scripted": ["Microsoft-Windows-Diagnosis-Scripted/Operational"],
    "shell-core": ["Microsoft-Windows-Shell-Core/Operational"],
    "openssh": ["OpenSSH/Operational"],
    "bitlocker": ["Microsoft-Windows-BitLocker/BitLocker Management"],
    "vhdmp": ["Microsoft-Windows-VHDMP/Operational"],
    "appxdeployment-server": ["Microsoft-Windows-AppXDeploymentServer/Operational"],
    "lsa-server": ["Microsoft-Windows-LSA/Operational"],
    "appxpackaging-om": ["Microsoft-Windows-AppxPackaging/Operational"],
    "dns-client": ["Microsoft-Windows-DNS Client Events/Operational"],
    "appmodel-runtime": ["Microsoft-Windows-AppModel-Runtime/Admin"],
    "capi2": ["Microsoft-Windows-CAPI2/Operational"],
    "certificateservicesclient-lifecycle-system": ["Microsoft-Windows-CertificateServicesClient-Lifecycle-System/Operational"],
    "iis-configuration": ["Microsoft-IIS-Configuration/Operational"],
    "kernel-shimengine": ["Microsoft-Windows-Kernel-ShimEngine/Operational"],
    "hyper-v-worker": ["Microsoft-Windows-Hyper-V-Worker"],
}


def _service_channels() -> dict[str, frozenset[str]]:
    return {svc: frozenset(c.lower() for c in chans) for svc, chans in _SERVICE_CHANNELS.items()}


SERVICE_CHANNELS: dict[str, frozenset[str]] = _service_channels()

# Sigma Windows category -> (channel, event ids) pairs that carry it.
CATEGORY_EVENTS: dict[str, list[tuple[str, frozenset[str]]]] = {
    "process_creation": [(_SYSMON, frozenset({"1"})), ("security", frozenset({"4688"}))],
    "file_change": [(_SYSMON, frozenset({"2"}))],
    "network_connection": [(_SYSMON, frozenset({"3"}))],
    "sysmon_status": [(_SYSMON, frozenset({"4", "16"}))],
    "process_termination": [(_SYSMON, frozenset({"5"}))],
    "driver_load": [(_SYSMON, frozenset({"6"}))],
    "image_load": [(_SYSMON, frozenset({"7"}))],
    "create_remote_thread": [(_SYSMON, frozenset({"8"}))],
    "raw_access_thread": [(_SYSMON, frozenset({"9"}))],
    "process_access": [(_SYSMON, frozenset({"10"}))],
    "file_event": [(_SYSMON, frozenset({"11"}))],
    "registry_add": [(_SYSMON, frozenset({"12"}))],
    "registry_delete": [(_SYSMON, frozenset({"12"}))],
    "registry_set": [(_SYSMON, frozenset({"13"}))],
    "registry_rename": [(_SYSMON, frozenset({"14"}))],
    "registry_event": [(_SYSMON, frozenset({"12", "13", "14"}))],
    "create_stream_hash": [(_SYSMON, frozenset({"15"}))],
    "pipe_created": [(_SYSMON, frozenset({"17", "18"}))],
    "wmi_event": [(_SYSMON, frozenset({"19", "20", "21"}))],
    "dns_query": [(_SYSMON, frozenset({"22"}))],
    "file_delete": [(_SYSMON, frozenset({"23", "26"}))],
    "clipboard_capture": [(_SYSMON, frozenset({"24"}))],
    "process_tampering": [(_SYSMON, frozenset({"25"}))],
    "file_delete_detected": [(_SYSMON, frozenset({"26"}))],
    "file_block_executable": [(_SYSMON, frozenset({"27"}))],
    "file_block_shredding": [(_SYSMON, frozenset({"28"}))],
    "file_executable_detected": [(_SYSMON, frozenset({"29"}))],
    "sysmon_error": [(_SYSMON, frozenset({"255"}))],
    "ps_module": [(c, frozenset({"4103"})) for c in _PS],
    "ps_script": [(c, frozenset({"4104"})) for c in _PS],
    "ps_classic_start": [("windows powershell", frozenset({"400"}))],
    "ps_classic_provider_start": [("windows powershell", frozenset({"600"}))],
    "ps_classic_script": [("windows powershell", frozenset({"800"}))],
}

# Non-Windows rule category -> ECS event.category values an event of it would carry.
# An event whose event.category is set and shares none of these is not offered the rule.
CATEGORY_ECS: dict[str, frozenset[str]] = {
    "process_creation": frozenset({"process"}),
    "network_connection": frozenset({"network"}),
    "firewall": frozenset({"network"}),
    "dns": frozenset({"network", "dns"}),
    "dns_query": frozenset({"network", "dns"}),
    "file_event": frozenset({"file"}),
    "webserver": frozenset({"web", "network"}),
    "proxy": frozenset({"web", "network"}),
    "authentication": frozenset({"authentication"}),
}

_OS_PRODUCTS = frozenset({"windows", "linux", "macos"})

PRODUCT_MODULES: dict[str, tuple[str, ...]] = {
    "zeek": ("zeek",),
    "suricata": ("suricata",),
    "fortigate": ("fortinet_fortigate",),
    "cisco": ("cisco",),
    "juniper": ("juniper",),
    "huawei": ("huawei",),
    "paloalto": ("panw",),
    "checkpoint": ("checkpoint",),
    "aws": ("aws",),
    "azure": ("azure",),
    "gcp": ("gcp",),
    "okta": ("okta",),
    "github": ("github",),
    "m365": ("o365", "m365"),
    "google_workspace": ("google_workspace",),
}
"""Sigma ``logsource.product`` of a sensor, appliance or cloud service -> the ``event.module``
values (Elastic's module names, which our parsers and shippers write) its logs carry, each
also as a prefix (``cisco`` covers ``cisco_asa``, ``cisco_ios``, ``cisco_ftd``). A rule of
such a product sees only those events: a ``product: zeek`` rule's ``not selection`` must not
match a camera log, and SigmaHQ's ``product: cisco, service: aaa`` keyword rule
(``erase``/``delete``/``format``) must not fire on every Linux syslog line whose severity
name is "informational" (it did: 60,000 alerts for 60,000 sshd lines, issue 14's profile).
Products not listed (an OS, our own pack's ``cctv``/``warehouse``/``forecasting``/``network``)
are not narrowed by module: their rules' conditions select, and nothing silently never runs."""

SERVICE_MODULES: dict[tuple[str, str], tuple[str, ...]] = {
    ("linux", "auditd"): ("auditd",),
}
"""``(product, service)`` -> ``event.module`` values, for services whose logs have a module
of their own (auditd; ``auditd`` also covers Elastic Agent's ``auditd_manager``). Services
that are syslog programs (``sshd``, ``cron``, ``sudo``) share the ``system`` module with
every other program, so they are not narrowed here."""


def module_matches(module: str | None, wanted: tuple[str, ...]) -> bool:
    """True when ``module`` is one of ``wanted`` or starts with one of them and ``_``."""
    if not module:
        return False
    return any(module == w or module.startswith(w + "_") for w in wanted)


@dataclass(frozen=True, slots=True)
class Route:
    """Which events a rule accepts. ``windows`` rules see only Windows events, and only
    the (channel, event id) pairs in ``pairs`` / channels in ``channels`` when set."""

    windows: bool | None
    """True: Windows events only; False: non-Windows only; None: both."""
    channels: frozenset[str] | None = None
    pairs: tuple[tuple[str, frozenset[str]], ...] | None = None
    os: str | None = None
    ecs_categories: frozenset[str] | None = None
    modules: tuple[str, ...] | None = None
    """Only events whose ``event.module`` is one of these or starts with one and ``_``
    (:data:`PRODUCT_MODULES`, :data:`SERVICE_MODULES`)."""

    def accepts(self, key: tuple[Any, ...]) -> bool:
        if key[0] == "win":
            if self.windows is False:
                return False
            _, channel, eid = key
            if self.channels is not None and channel not in self.channels:
                return False
            if self.pairs is not None and not any(channel == c and eid in ids for c, ids in self.pairs):
                return False
            return True
        if self.windows is True:
            return False
        _, os_type, cats = key[:3]
        if self.modules is not None and (len(key) < 4 or not module_matches(key[3], self.modules)):
            return False
        if self.os and os_type and os_type != self.os:
            return False
        if self.ecs_categories is not None and cats and not (self.ecs_categories & cats):
            return False
        return True


def route_for(product: str | None, category: str | None, service: str | None) -> tuple[Route, list[str]]:
    """The route of a logsource and any warnings about parts we cannot route on."""
    warnings: list[str] = []
    product = (product or "").lower() or None
    category = (category or "").lower() or None
    service = (service or "").lower() or None
    # Product-less rules naming a Windows-only service (e.g. ``service: security``) are Windows rules.
    is_windows = product == "windows" or (
        product is None and service is not None and service in SERVICE_CHANNELS and category is None
    )
    if is_windows:
        channels = None
        pairs = None
        if service:
            if service in SERVICE_CHANNELS:
                channels = SERVICE_CHANNELS[service]
            else:
                warnings.append(f"windows service '{service}' has no channel mapping: the rule sees every Windows event")
        if category:
            if category in CATEGORY_EVENTS:
                pairs = tuple(CATEGORY_EVENTS[category])
            else:
                warnings.append(f"windows category '{category}' has no event mapping: the rule sees every Windows event")
        return Route(True, channels, pairs), warnings
    if product is None:
        # No product: a category Windows logs carry (process_creation...) is seen on both
        # kinds of event; any other category or service (database, antivirus, a web server)
        # names a log Windows event logs are not, so only non-Windows events are offered.
        if category is None and service is None:
            return Route(None), warnings
        windows_too = category in CATEGORY_EVENTS
        return Route(None if windows_too else False, ecs_categories=CATEGORY_ECS.get(category or "")), warnings
    modules = SERVICE_MODULES.get((product, service or "")) or PRODUCT_MODULES.get(product)
    return Route(False, os=product if product in _OS_PRODUCTS else None, ecs_categories=CATEGORY_ECS.get(category or ""),
                 modules=modules), warnings


def event_route_key(event: Mapping[str, Any]) -> tuple[Any, ...]:
    """``("win", channel, event_id)`` for Windows events, else ``("ecs", os, categories, module)``."""
    winlog = event.get("winlog")
    # Any Windows event (ETW-derived records have an empty channel) is routed as Windows.
    if winlog is not None and isinstance(winlog, Mapping) and ("channel" in winlog or "event_id" in winlog or "provider_name" in winlog):
        eid = winlog.get("event_id")
        if eid is None:
            eid = (event.get("event") or {}).get("code")
        return ("win", str(winlog.get("channel") or "").lower(), str(eid) if eid is not None else "")
    os_type = None
    host = event.get("host")
    if host.__class__ is dict or (host is not None and isinstance(host, Mapping)):
        os_node = host.get("os")
        if os_node is not None and isinstance(os_node, Mapping):
            os_type = os_node.get("type") or os_node.get("family")
    ev = event.get("event")
    cats: frozenset[str] = frozenset()
    is_map = ev.__class__ is dict or (ev is not None and isinstance(ev, Mapping))  # plain dicts skip the slow ABC check
    module = None
    if is_map:
        c = ev.get("category")
        if isinstance(c, str):
            cats = frozenset((c,))
        elif isinstance(c, (list, tuple)):
            cats = frozenset(str(x) for x in c)
        module = ev.get("module")
    return ("ecs", str(os_type).lower() if os_type else None, cats, module if isinstance(module, str) else None)
