"""Session-wide: the tests leave the host's firewall and routes as they found them.

At session start the host's ``nft list ruleset``, ``ip route`` and ``ip -6 route`` are
recorded and, as root, an ``nft`` sandbox is put first on ``PATH`` (``tests/hostguard.py``):
a playbook or test that runs plain ``nft`` from the host's network namespace acts in a
namespace this session owns. At session end the sandbox is removed and the host's state
compared with the start; any difference fails the session and prints the diff. Parts
whose tool is missing (no ``nft``, no ``ip``) are skipped.
"""
from __future__ import annotations

import pytest

from hostguard import NftSandbox, host_diff, snapshot

_state: dict[str, object] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    _state["before"] = snapshot()
    _state["sandbox"] = NftSandbox.open()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    sandbox = _state.pop("sandbox", None)
    if isinstance(sandbox, NftSandbox):
        sandbox.close()
    before = _state.pop("before", None)
    if not isinstance(before, dict):
        return
    diffs = host_diff(before, snapshot())
    if not diffs:
        return
    text = ("\nHOST STATE CHANGED during this test session (tests must act only in namespaces they "
            "create; see tests/hostguard.py):\n" + "\n".join(diffs) + "\n")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(text, red=True, bold=True)
    else:
        print(text)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
