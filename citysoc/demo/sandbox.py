"""Where the served demo's playbooks act: never the machine it runs on.

``citysoc serve`` on the demo city (``demo.enabled``) opens a :class:`DemoSandbox`
before the playbook runner is built: a network namespace of its own (``citysoc-demo-<pid>``,
loopback only), which becomes ``playbooks.nft.command_prefix`` so ``block_ip`` and
``isolate_host`` build their table in it, and which is deleted when serve stops. When
no namespace can be made (not root, no ``ip`` or ``nft``), or ``demo.sandbox: dry-run``,
:func:`force_dry_runs` makes every run of the runner a dry run: it describes what it
would do and does nothing.

Mail, webhooks and databases of the demo point at reserved ``.invalid`` names
(:func:`citysoc.demo.run.demo_config`): a real run of those steps fails without any
traffic leaving the machine.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

__all__ = ["DemoSandbox", "force_dry_runs"]

log = logging.getLogger("citysoc.demo")


@dataclass
class DemoSandbox:
    """One network namespace the demo server owns while it runs."""

    ns: str

    @property
    def prefix(self) -> list[str]:
        """The ``playbooks.nft.command_prefix`` that runs nft inside the namespace."""
        return ["ip", "netns", "exec", self.ns]

    @classmethod
    def open(cls, name: str | None = None) -> tuple[DemoSandbox | None, str]:
        """Create the namespace: ``(sandbox, "")``, or ``(None, why not)`` without changing anything."""
        if os.geteuid() != 0:
            return None, "not running as root (network namespaces need it)"
        for tool in ("ip", "nft"):
            if shutil.which(tool) is None:
                return None, f"`{tool}` is not installed"
        ns = name or f"citysoc-demo-{os.getpid()}"
        cp = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True, timeout=20)
        if cp.returncode != 0:
            return None, f"`ip netns add {ns}` failed: {cp.stderr.strip()}"
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], capture_output=True, timeout=20)
        return cls(ns), ""

    def close(self) -> None:
        """Delete the namespace (and with it the demo's nft table)."""
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, timeout=20)


def force_dry_runs(runner: Any) -> None:
    """Every run ``runner`` starts from now on (by alert, by hand, by schedule, a rerun)
    is a dry run: the demo without a sandbox must not act on this machine."""
    real_start = runner.start

    async def start(name: str, **kwargs: Any) -> Any:
        kwargs["dry_run"] = True
        return await real_start(name, **kwargs)

    def refusing(real: Any) -> Any:
        async def call(run_id: int, **kwargs: Any) -> Any:
            import asyncio

            from core.playbooks import RunStateError

            run = await asyncio.to_thread(runner.store.get_run, run_id)
            if not run.dry_run:  # a real run left from a sandboxed start: it would act on this machine now
                raise RunStateError(f"run {run_id} is a real run and this demo has no sandbox to act in "
                                    "(dry runs only); start it again as a dry run")
            return await real(run_id, **kwargs)
        return call

    runner.start = start
    runner.approve = refusing(runner.approve)
    runner.resume = refusing(runner.resume)
    runner.dry_run_only = True
