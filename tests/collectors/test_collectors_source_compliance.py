"""Every source of ours satisfies ``core.protocols.Source`` and reports the same counters."""
from __future__ import annotations

from pathlib import Path

import pytest

from collectors.sources.syslog import SyslogTCPSource, SyslogUDPSource
from collectors.sources.tail import FileTailSource
from core.protocols import Source


@pytest.mark.parametrize("make", [
    lambda tmp: SyslogUDPSource(port=0),
    lambda tmp: SyslogTCPSource(port=0),
    lambda tmp: FileTailSource([str(tmp / "*.log")], checkpoint=tmp / "tail.json"),
], ids=["udp", "tcp", "tail"])
def test_source_contract(make, tmp_path: Path) -> None:
    src = make(tmp_path)
    assert isinstance(src, Source)
    assert isinstance(src.name, str) and src.name
    counters = src.counters()
    assert {"received", "emitted", "errors", "dropped"} <= set(counters)
    assert all(isinstance(v, int) and v == 0 for v in counters.values())


def test_names_are_distinct_per_transport() -> None:
    names = {SyslogUDPSource(port=5514).name, SyslogTCPSource(port=5514).name,
             SyslogTCPSource(port=6514, tls_cert="c", tls_key="k").name}
    assert names == {"syslog-udp:5514", "syslog-tcp:5514", "syslog-tls:6514"}
