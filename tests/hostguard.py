"""The test session's promise to the host: its firewall and routes are left as found.

Two parts, used by ``tests/conftest.py``:

* :class:`NftSandbox`: for the whole session, ``nft`` run from the host's own network
  namespace (by any test, any ``citysoc serve`` it starts, any playbook whose
  ``playbooks.nft.command_prefix`` is empty) runs inside a namespace the session creates
  and removes instead. It works through ``PATH``: a shim named ``nft`` first on the path
  checks which network namespace it was started in; in the host's it re-runs itself with
  ``ip netns exec <sandbox>``, in any other (a test's own gateway namespace) it runs the
  real ``nft`` unchanged. Root only (without root, ``nft`` cannot change the host anyway).
* :func:`snapshot` / :func:`host_diff`: the host's ``nft list ruleset``, ``ip route`` and
  ``ip -6 route`` at session start and end, compared after taking out what changes by
  itself (set element expiry countdowns, rule counters); any other difference fails the
  session with the diff.

The snapshot always calls the real binaries by absolute path, never the shim.
"""
from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NftSandbox", "snapshot", "host_diff", "normalise_ruleset", "HOST_COMMANDS"]

HOST_COMMANDS: dict[str, list[str]] = {
    "nft list ruleset": ["nft", "list", "ruleset"],
    "ip route": ["ip", "route"],
    "ip -6 route": ["ip", "-6", "route"],
}
"""What the guard compares, by the name it reports."""

_EXPIRES = re.compile(r"\s+expires\s+[0-9hmsd]+(?:ms)?")
_COUNTER = re.compile(r"(counter\s+packets\s+)\d+(\s+bytes\s+)\d+")
_ROUTE_EXPIRES = re.compile(r"\s+expires\s+\d+sec")


def normalise_ruleset(text: str) -> str:
    """``nft list ruleset`` without what moves on its own: ``expires 3h58m56s708ms`` on set
    elements with a timeout, and packet/byte counters."""
    text = _EXPIRES.sub("", text)
    return _COUNTER.sub(r"\g<1>N\g<2>N", text)


def _normalise(name: str, text: str) -> str:
    if name.startswith("nft"):
        return normalise_ruleset(text)
    return _ROUTE_EXPIRES.sub("", text)  # router-advertised IPv6 routes count down


def _real(tool: str) -> str | None:
    for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"):
        p = Path(d) / tool
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def snapshot() -> dict[str, str]:
    """The host's state per :data:`HOST_COMMANDS`; a command whose tool is missing or
    that fails (no permission) is left out, so the guard skips that part."""
    out: dict[str, str] = {}
    for name, argv in HOST_COMMANDS.items():
        exe = _real(argv[0])
        if exe is None:
            continue
        cp = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=30)
        if cp.returncode == 0:
            out[name] = cp.stdout
    return out


def host_diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Unified diffs (one string per changed command) between two :func:`snapshot` results,
    after :func:`normalise_ruleset`; empty when the host is as it was. A command present in
    only one snapshot is compared against nothing: it appeared or vanished."""
    diffs: list[str] = []
    for name in HOST_COMMANDS:
        if name not in before and name not in after:
            continue
        a = _normalise(name, before.get(name, "")).splitlines()
        b = _normalise(name, after.get(name, "")).splitlines()
        if a != b:
            diffs.append("\n".join(difflib.unified_diff(a, b, f"{name} (session start)", f"{name} (session end)",
                                                        lineterm="")))
    return diffs


_SHIM = """#!/bin/sh
# citysoc test session {pid}: `nft` started in the host's network namespace runs in the
# session's sandbox namespace instead; in any other namespace, the real nft.
if [ "$(readlink /proc/self/ns/net)" = "{host_ns}" ]; then
  exec {ip} netns exec {ns} {nft} "$@"
fi
exec {nft} "$@"
"""


@dataclass
class NftSandbox:
    """A network namespace for the session plus the ``nft`` shim that sends host-namespace
    calls into it. :meth:`open` returns None (and changes nothing) without root, ``ip`` or
    ``nft``."""

    ns: str
    shim_dir: Path
    old_path: str

    @classmethod
    def open(cls) -> NftSandbox | None:
        ip, nft = _real("ip"), _real("nft")
        if os.geteuid() != 0 or ip is None or nft is None:
            return None
        ns = f"cstest-sbx-{os.getpid()}"
        cp = subprocess.run([ip, "netns", "add", ns], capture_output=True, text=True, timeout=20)
        if cp.returncode != 0:
            return None
        shim_dir = Path(tempfile.mkdtemp(prefix="cstest-nft-shim-"))
        shim = shim_dir / "nft"
        shim.write_text(_SHIM.format(pid=os.getpid(), host_ns=os.readlink("/proc/self/ns/net"), ip=ip, ns=ns,
                                     nft=nft), encoding="utf-8")
        shim.chmod(0o755)
        old = os.environ.get("PATH", "")
        os.environ["PATH"] = f"{shim_dir}{os.pathsep}{old}"
        return cls(ns=ns, shim_dir=shim_dir, old_path=old)

    def close(self) -> None:
        os.environ["PATH"] = self.old_path
        ip = _real("ip")
        if ip is not None:
            subprocess.run([ip, "netns", "del", self.ns], capture_output=True, timeout=20)
        shutil.rmtree(self.shim_dir, ignore_errors=True)
