"""The session guard of ``tests/conftest.py``: its comparison catches a host change and
ignores what moves by itself; its sandbox sends plain ``nft`` away from the host.

No test here changes the host: the comparison is checked on captured ruleset texts,
and the sandbox test adds a table through the shim and checks it landed in the session's
namespace (the real guard then checks the host at session end).
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from hostguard import host_diff, normalise_ruleset, snapshot

EMPTY = ""
CITYSOC_TABLE = """table inet citysoc {
\tset blocked4 {
\t\ttype ipv4_addr
\t\tflags timeout
\t\telements = { 10.20.5.11 timeout 4h expires 3h58m56s708ms, 203.0.113.66 timeout 4h expires 3h58m54s664ms }
\t}
\tchain input {
\t\ttype filter hook input priority filter - 10; policy accept;
\t\tip saddr @blocked4 counter packets 12 bytes 720 drop
\t}
}
"""


def test_a_table_left_behind_fails_the_comparison_naming_it() -> None:
    diffs = host_diff({"nft list ruleset": EMPTY}, {"nft list ruleset": CITYSOC_TABLE})
    assert len(diffs) == 1
    assert "nft list ruleset" in diffs[0] and "+table inet citysoc {" in diffs[0]
    assert "+\t\telements = { 10.20.5.11 timeout 4h" in diffs[0]


def test_an_added_element_or_route_is_a_difference() -> None:
    more = CITYSOC_TABLE.replace("10.20.5.11 timeout 4h", "10.20.3.250 timeout 4h, 10.20.5.11 timeout 4h")
    assert host_diff({"nft list ruleset": CITYSOC_TABLE}, {"nft list ruleset": more})
    route = "default via 192.0.2.1 dev eth0\n"
    diffs = host_diff({"ip route": route}, {"ip route": route + "10.99.0.0/24 dev veth0 scope link\n"})
    assert len(diffs) == 1 and diffs[0].startswith("--- ip route (session start)")


def test_expiry_countdowns_and_counters_are_not_differences() -> None:
    later = (CITYSOC_TABLE.replace("expires 3h58m56s708ms", "expires 2h1m3s")
             .replace("expires 3h58m54s664ms", "expires 59s12ms").replace("packets 12 bytes 720", "packets 9000 bytes 1"))
    assert host_diff({"nft list ruleset": CITYSOC_TABLE}, {"nft list ruleset": later}) == []
    assert "expires" not in normalise_ruleset(CITYSOC_TABLE)


def test_a_part_missing_at_one_end_is_reported() -> None:
    assert host_diff({"ip route": "x\n"}, {}) != []
    assert host_diff({}, {}) == []


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nft") is None,
                    reason="the nft sandbox needs root, ip and nft")
def test_plain_nft_in_the_session_acts_in_the_sandbox_not_on_the_host() -> None:
    # what a playbook with an empty command_prefix runs: "nft" through PATH
    host_before = normalise_ruleset(snapshot().get("nft list ruleset", ""))
    name = f"cstest{os.getpid()}"
    subprocess.run(["nft", "add", "table", "inet", name], check=True, timeout=20)
    try:
        seen = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
        assert f"table inet {name}" in seen  # the sandbox holds it ...
        assert normalise_ruleset(snapshot().get("nft list ruleset", "")) == host_before  # ... the host does not
    finally:
        subprocess.run(["nft", "delete", "table", "inet", name], timeout=20)
    ns_shim = shutil.which("nft")
    assert ns_shim is not None and "cstest-nft-shim-" in ns_shim
