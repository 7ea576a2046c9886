"""Issue 13 item 1: every address-bearing Linux auth message gives ``source.ip``.

Run over Elastic's system.auth pipeline-test inputs (lines we did not write) and over our
golden auth cases (sshd pre-auth noise, PAM, old ``sshd(pam_unix)`` syslog, FTP servers):
a line that names a peer address yields ``source.ip`` equal to one of the addresses in it
(IPv4-mapped IPv6 may be given as its IPv4). The listener's own address ("Server
listening on 0.0.0.0") and malformed addresses are not peers.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import re
from pathlib import Path

import pytest

from bench import parity
from collectors.parsers import parse_record
from core.protocols import RawRecord

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc)
GOLDEN = Path(__file__).resolve().parent / "golden"
_TOKEN = re.compile(r"[0-9A-Fa-f:.]*[0-9A-Fa-f]")
_NOT_A_PEER = ("Server listening on ",)


def _addresses(line: str) -> set[str]:
    out: set[str] = set()
    for tok in _TOKEN.findall(line):
        if "." not in tok and tok.count(":") < 2:
            continue  # times (10:00:01) and plain numbers
        try:
            ip = ipaddress.ip_address(tok)
        except ValueError:
            continue
        out.add(str(ip))
        mapped = getattr(ip, "ipv4_mapped", None)
        if mapped:
            out.add(str(mapped))
    return out


def _check(lines: list[str], fmt: str) -> tuple[int, list[str]]:
    bearing, missing = 0, []
    for line in lines:
        addrs = _addresses(line)
        if not addrs or any(p in line for p in _NOT_A_PEER):
            continue
        bearing += 1
        ev = parse_record(RawRecord(line.encode(), format=fmt, source="test"), now=NOW)
        got = (ev.get("source") or {}).get("ip")
        if got not in addrs:
            missing.append(f"{line!r} -> {got!r}")
    return bearing, missing


def test_elastic_system_auth_inputs_give_source_ip() -> None:
    base = parity.corpus_dir()
    if base is None:
        pytest.skip("shared/corpora/ecs-parity absent")
    lines = [ln for p in sorted((base / "system.auth").glob("test-*.log")) for ln in p.read_text().splitlines() if ln]
    bearing, missing = _check(lines, "syslog")
    assert bearing >= 5 and not missing, missing


@pytest.mark.parametrize("case,fmt", [("sshd/honeypot.log", "sshd"), ("sshd/auth.log", "sshd"), ("pam/pam.log", "pam"),
                                      ("syslog/old_pam.log", "syslog"), ("ftpd/ftpd.log", "ftpd")])
def test_golden_auth_cases_give_source_ip(case: str, fmt: str) -> None:
    lines = [ln for ln in (GOLDEN / case).read_text(encoding="utf-8").splitlines() if ln]
    bearing, missing = _check(lines, fmt)
    assert bearing > 0 and not missing, missing
