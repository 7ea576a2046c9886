"""nftables actions on the SOC gateway: ``block_ip``, ``unblock_ip``, ``isolate_host``, ``release_host``.

The SOC owns one table (``inet citysoc`` by default). Blocked and isolated addresses
are elements of sets declared with ``flags timeout``, so a TTL is the kernel's job: an
element added with ``timeout 3600s`` disappears by itself and nothing has to remember
to unblock. Rules are fixed and only reference the sets; acting is adding or deleting
one element. ``nft`` is always called with an argument list (never a shell); elements
go through ``nft -j`` JSON (the address is a JSON string value, so no content of it is
ever read as nft syntax), every address is checked by the ``ip`` input type (exactly as
:mod:`ipaddress` prints it, no scope id) and must lie in ``playbooks.nft.allow_block``;
the table script holds only validated settings. Table creation runs under a file lock
(``$TMPDIR/citysoc-nft-<target>-<table>.lock``), so concurrent runs, in one process or several, create the
table once.

Table layout (created when missing, never modified when present)::

    table inet citysoc {
      set blocked4/blocked6   { flags timeout }     # block_ip
      set isolated4/isolated6 { flags timeout }     # isolate_host
      set soc4/soc6           { flags interval }    # who an isolated host may still reach
      chain input/forward/output { hook ... priority -10; policy accept; drop rules }
    }
"""
from __future__ import annotations

import datetime as _dt
import fcntl
import ipaddress
import json
import os
import subprocess
import tempfile
import threading
from typing import Any

from core.messages import Message
from playbooks.actions.base import Action, ActionContext, ActionError, Param

__all__ = ["BlockIp", "UnblockIp", "IsolateHost", "ReleaseHost", "nft", "ensure_table", "table_script",
           "element_command", "check_allowed"]


def nft(ctx: ActionContext, args: list[str], *, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``[*command_prefix, "nft", *args]``; raise :class:`ActionError` with nft's message on failure."""
    argv = [*ctx.settings.nft.command_prefix, "nft", *args]
    try:
        cp = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=max(1.0, ctx.timeout))
    except FileNotFoundError:
        raise ActionError(f"{argv[0]!r} is not installed on this host (apt-get install nftables)") from None
    except subprocess.TimeoutExpired:
        raise ActionError(f"nft did not answer within {ctx.timeout:.0f} s: {' '.join(args[:4])} ...") from None
    if check and cp.returncode != 0:
        raise ActionError(f"nft {' '.join(args[:3])} failed: {cp.stderr.strip() or 'exit ' + str(cp.returncode)}")
    return cp


def _family(ip: str) -> str:
    return "4" if ipaddress.ip_address(ip).version == 4 else "6"


def _soc(ctx: ActionContext) -> tuple[list[str], list[str]]:
    v4, v6 = [], []
    for a in ctx.settings.nft.soc_addresses:
        net = ipaddress.ip_network(a, strict=False)
        (v4 if net.version == 4 else v6).append(str(net))
    return v4, v6


def table_script(ctx: ActionContext) -> str:
    """The fixed ``nft -f`` script that creates the SOC table (no user data in it)."""
    t = ctx.settings.nft.table
    v4, v6 = _soc(ctx)
    soc4 = f"elements = {{ {', '.join(v4)} }};" if v4 else ""
    soc6 = f"elements = {{ {', '.join(v6)} }};" if v6 else ""
    drops_in = ("ip saddr @blocked4 drop\n    ip6 saddr @blocked6 drop\n"
                "    ip saddr @isolated4 ip daddr != @soc4 drop\n    ip6 saddr @isolated6 ip6 daddr != @soc6 drop")
    drops_out = ("ip daddr @blocked4 drop\n    ip6 daddr @blocked6 drop\n"
                 "    ip daddr @isolated4 ip saddr != @soc4 drop\n    ip6 daddr @isolated6 ip6 saddr != @soc6 drop")
    return f"""table inet {t} {{
  set blocked4 {{ type ipv4_addr; flags timeout; }}
  set blocked6 {{ type ipv6_addr; flags timeout; }}
  set isolated4 {{ type ipv4_addr; flags timeout; }}
  set isolated6 {{ type ipv6_addr; flags timeout; }}
  set soc4 {{ type ipv4_addr; flags interval; {soc4} }}
  set soc6 {{ type ipv6_addr; flags interval; {soc6} }}
  chain input {{ type filter hook input priority -10; policy accept;
    {drops_in}
  }}
  chain forward {{ type filter hook forward priority -10; policy accept;
    {drops_in}
    {drops_out}
  }}
  chain output {{ type filter hook output priority -10; policy accept;
    {drops_out}
  }}
}}
"""


_SETS = ("blocked4", "blocked6", "isolated4", "isolated6", "soc4", "soc6")


_THREAD_LOCK = threading.Lock()


def _lock_path(ctx: ActionContext) -> str:
    """One lock file per nft target (command prefix) and table, in the temp folder: every
    process acting on that gateway shares it, whatever its data directory."""
    where = "-".join(ctx.settings.nft.command_prefix) or "host"
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in where)[:80]
    return os.path.join(tempfile.gettempdir(), f"citysoc-nft-{safe}-{ctx.settings.nft.table}.lock")


def ensure_table(ctx: ActionContext) -> bool:
    """Create the SOC table when missing; True when it was created. A table of that name
    without our sets is someone else's: refuse rather than change it.

    Checking and creating happen under an exclusive ``flock`` on a lock file per nft target
    (and a thread lock): two runs that both saw no table would otherwise both load the
    script, and every drop rule would exist twice."""
    t = ctx.settings.nft.table
    with _THREAD_LOCK, open(_lock_path(ctx), "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            return _ensure_table_locked(ctx, t)
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _ensure_table_locked(ctx: ActionContext, t: str) -> bool:
    if nft(ctx, ["list", "table", "inet", t], check=False).returncode != 0:
        nft(ctx, ["-f", "-"], stdin=table_script(ctx))
        return True
    listed = nft(ctx, ["list", "sets", "table", "inet", t]).stdout
    missing = [s for s in _SETS if f"set {s} " not in listed]
    if missing:
        raise ActionError(f"nftables table inet {t} exists but lacks set(s) {', '.join(missing)}: it was not made by "
                          f"citysoc. Set playbooks.nft.table to another name, or remove it (nft delete table inet {t})")
    return False


def _nets(items: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(a, strict=False) for a in items]


def check_allowed(ctx: ActionContext, ip: str, what: str) -> None:
    """Refuse an address a playbook must never cut off: loopback, unspecified, multicast, the
    SOC's own (``soc_addresses``), anything outside ``allow_block``, and the city's internal
    ranges unless an ``allow_block`` entry inside them names the address's network."""
    addr = ipaddress.ip_address(ip)
    nft_s = ctx.settings.nft
    if addr.is_loopback or addr.is_unspecified or addr.is_multicast or addr.is_link_local:
        raise ActionError(f"refusing to {what} {ip}: loopback, link-local, unspecified and multicast addresses are "
                          "never blocked")
    if any(addr in n for n in _nets(nft_s.soc_addresses)):
        raise ActionError(f"refusing to {what} {ip}: it is a SOC address (playbooks.nft.soc_addresses)")
    allowed = [n for n in _nets(nft_s.allow_block) if addr in n]
    if not allowed:
        raise ActionError(f"refusing to {what} {ip}: it is outside playbooks.nft.allow_block "
                          f"({', '.join(nft_s.allow_block) or 'empty'})")
    internal = [n for n in _nets(nft_s.internal_networks) if addr in n]
    if internal and not any(a.version == i.version and a.subnet_of(i)  # type: ignore[arg-type]
                            for a in allowed for i in internal):
        raise ActionError(f"refusing to {what} {ip}: it is in the city's internal range {internal[0]} "
                          "(playbooks.nft.internal_networks); list its network in playbooks.nft.allow_block "
                          "to let playbooks act on it")



def _expiry(ttl: int | None) -> str | None:
    if not ttl:
        return None
    return (_dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=ttl)).strftime("%Y-%m-%dT%H:%M:%SZ")


def element_command(verb: str, table: str, set_name: str, ip: str, ttl: int | None = None) -> str:
    """The ``nft -j -f -`` document adding or deleting one set element. The address is a JSON
    string value (re-checked here), never text that nft's lexer reads as syntax."""
    if verb not in ("add", "delete"):
        raise ValueError(f"unknown element verb {verb!r}")
    addr = str(ipaddress.ip_address(ip))
    if addr != ip or "%" in addr:
        raise ActionError(f"{ip[:60]!r} is not a canonical address without a scope id")
    elem: Any = {"elem": {"val": addr, "timeout": int(ttl)}} if ttl else addr
    return json.dumps({"nftables": [{verb: {"element": {"family": "inet", "table": table, "name": set_name,
                                                        "elem": [elem]}}}]})


def _add(ctx: ActionContext, set_name: str, ip: str, ttl: int | None) -> None:
    nft(ctx, ["-j", "-f", "-"], stdin=element_command("add", ctx.settings.nft.table, set_name, ip, ttl))


def _delete(ctx: ActionContext, set_name: str, ip: str) -> bool:
    cp = nft(ctx, ["-j", "-f", "-"], stdin=element_command("delete", ctx.settings.nft.table, set_name, ip),
             check=False)
    if cp.returncode == 0:
        return True
    if "No such file or directory" in cp.stderr or "does not exist" in cp.stderr:
        return False
    raise ActionError(f"nft delete element failed: {cp.stderr.strip()}")


class BlockIp(Action):
    name = "block_ip"
    description = "Drop all traffic from and to an address on the SOC gateway, for ttl_s seconds (nftables set timeout)."
    inputs = {"ip": Param("ip", doc="address to block"),
              "ttl_s": Param("int", required=False, doc="seconds until the kernel lifts the block; 0 = until unblocked"),
              "reason": Param("line", required=False, default="", doc="kept in the run record")}
    outputs = {"ip": "the address as blocked", "set": "nftables set it was added to", "ttl_s": "timeout given",
               "expires_at": "UTC time the block lifts (null when permanent)", "table_created": "the SOC table was new"}
    destructive = True
    target = ("ip", "source_ip")

    def _ttl(self, ctx: ActionContext, ttl: int | None) -> int:
        ttl = ctx.settings.nft.default_ttl_s if ttl is None else ttl
        if ttl < 0 or ttl > 30 * 86400:
            raise ActionError(f"ttl_s {ttl} is out of range: use 0 (permanent) up to 2592000 (30 days)")
        return ttl

    def run(self, ctx: ActionContext, *, ip: str, ttl_s: int | None = None, reason: str = "") -> dict[str, Any]:
        check_allowed(ctx, ip, "block")
        ttl = self._ttl(ctx, ttl_s)
        created = ensure_table(ctx)
        set_name = "blocked" + _family(ip)
        _delete(ctx, set_name, ip)  # re-blocking refreshes the timeout instead of failing on "exists"
        _add(ctx, set_name, ip, ttl)
        return {"ip": ip, "set": f"inet {ctx.settings.nft.table} {set_name}", "ttl_s": ttl,
                "expires_at": _expiry(ttl), "table_created": created}

    def describe(self, ctx: ActionContext, *, ip: str, ttl_s: int | None = None, reason: str = "") -> str:
        check_allowed(ctx, ip, "block")
        ttl = self._ttl(ctx, ttl_s)
        pre = " ".join(ctx.settings.nft.command_prefix)
        return Message("msg.nft.would_add_block", ip=ip, table=ctx.settings.nft.table, set="blocked" + _family(ip),
                       ttl=Message("msg.nft.ttl", s=ttl) if ttl else Message("msg.nft.permanent"),
                       via=Message("msg.nft.via", prefix=pre) if pre else "")


class UnblockIp(Action):
    name = "unblock_ip"
    description = "Lift a block_ip before its TTL ends."
    inputs = {"ip": Param("ip")}
    outputs = {"ip": "address", "was_blocked": "false when it was not (or no longer) blocked"}

    def run(self, ctx: ActionContext, *, ip: str) -> dict[str, Any]:
        ensure_table(ctx)
        return {"ip": ip, "was_blocked": _delete(ctx, "blocked" + _family(ip), ip)}

    def describe(self, ctx: ActionContext, *, ip: str) -> str:
        return Message("msg.nft.would_delete", ip=ip, table=ctx.settings.nft.table, set="blocked" + _family(ip))


class IsolateHost(Action):
    name = "isolate_host"
    description = "Cut a host off: drop all its traffic except to and from the SOC's addresses."
    inputs = {"ip": Param("ip", doc="host to isolate"),
              "ttl_s": Param("int", required=False, default=0, doc="0 = until released")}
    outputs = {"ip": "address", "set": "nftables set", "expires_at": "UTC time isolation lifts, or null",
               "soc_addresses": "what the host may still reach"}
    destructive = True
    target = ("ip", "source_ip")

    def run(self, ctx: ActionContext, *, ip: str, ttl_s: int = 0) -> dict[str, Any]:
        check_allowed(ctx, ip, "isolate")
        if ttl_s < 0 or ttl_s > 30 * 86400:
            raise ActionError(f"ttl_s {ttl_s} is out of range (0..2592000)")
        ensure_table(ctx)
        set_name = "isolated" + _family(ip)
        _delete(ctx, set_name, ip)
        _add(ctx, set_name, ip, ttl_s or None)
        return {"ip": ip, "set": f"inet {ctx.settings.nft.table} {set_name}", "expires_at": _expiry(ttl_s),
                "soc_addresses": list(ctx.settings.nft.soc_addresses)}

    def describe(self, ctx: ActionContext, *, ip: str, ttl_s: int = 0) -> str:
        check_allowed(ctx, ip, "isolate")
        soc = ", ".join(ctx.settings.nft.soc_addresses) or Message("msg.nft.no_soc")
        return Message("msg.nft.would_isolate", ip=ip, table=ctx.settings.nft.table, set="isolated" + _family(ip),
                       soc=soc, **{"for": Message("msg.nft.for_s", s=ttl_s) if ttl_s else ""})


class ReleaseHost(Action):
    name = "release_host"
    description = "End an isolate_host."
    inputs = {"ip": Param("ip")}
    outputs = {"ip": "address", "was_isolated": "false when it was not isolated"}

    def run(self, ctx: ActionContext, *, ip: str) -> dict[str, Any]:
        ensure_table(ctx)
        return {"ip": ip, "was_isolated": _delete(ctx, "isolated" + _family(ip), ip)}

    def describe(self, ctx: ActionContext, *, ip: str) -> str:
        return Message("msg.nft.would_delete", ip=ip, table=ctx.settings.nft.table, set="isolated" + _family(ip))
