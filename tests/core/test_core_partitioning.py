"""Partitioning is stable across processes and agrees for the same key values."""
import subprocess
import sys

import pytest

from core.partitioning import RoutingKey, home_partition, key_values, partition_of, route


def test_same_values_same_partition_and_spread():
    parts = {partition_of((f"10.0.0.{i}",), 8) for i in range(256)}
    assert parts == set(range(8))
    assert partition_of(("10.0.0.1", "root"), 8) == partition_of(("10.0.0.1", "root"), 8)


def test_stable_across_processes():
    # hash() is salted per process; CRC-32 is not: another interpreter computes the same partition.
    code = "from core.partitioning import partition_of; print(partition_of(('203.0.113.9','admin'), 16))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}, cwd=".").stdout.strip()
    assert int(out) == partition_of(("203.0.113.9", "admin"), 16)


def test_missing_key_has_no_route():
    keys = [RoutingKey("corr:ssh", ("source.ip", "user.name")), RoutingKey("net:scan", ("source.ip",))]
    ev = {"source": {"ip": "10.1.1.1"}}
    assert key_values(ev, ("source.ip", "user.name")) is None
    assert route(ev, keys, 4) == {"net:scan": partition_of(("10.1.1.1",), 4)}
    assert home_partition(ev, 4) == partition_of(("10.1.1.1",), 4)
    assert home_partition({}, 4, fallback="id-1") == partition_of(("id-1",), 4)


def test_bad_partition_count():
    with pytest.raises(ValueError):
        partition_of(("x",), 0)
