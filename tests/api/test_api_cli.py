"""`citysoc users` / `apikeys`: secrets printed once, work against the API, changes audited."""
from __future__ import annotations

import json
import re

from click.testing import CliRunner
from fastapi.testclient import TestClient

from citysoc.cli import main


def _run(data, *args):
    r = CliRunner().invoke(main, list(args), env={"CITYSOC_DATA": str(data)})
    return r.exit_code, r.output


def test_keys_and_users_from_the_cli_work_on_the_api(tmp_path):
    code, out = _run(tmp_path, "apikeys", "create", "filebeat", "--role", "ingest")
    assert code == 0, out
    key = re.search(r"key:\s+(csk_\S+)", out).group(1)
    code, out = _run(tmp_path, "users", "create", "an", "--role", "analyst")
    assert code == 0, out
    password = re.search(r"password \(shown once\): (\S+)", out).group(1)
    code, out = _run(tmp_path, "users", "create", "an", "--role", "analyst", "--password", "0123456789")
    assert code != 0 and "already exists" in out
    code, out = _run(tmp_path, "users", "create", "bo", "--role", "analyst", "--password", "short")
    assert code != 0 and "too short" in out
    code, out = _run(tmp_path, "apikeys", "list")
    assert "filebeat" in out and key not in out

    from api_stack import make_stack  # the same data dir, as the server would open it

    s = make_stack(tmp_path)
    with TestClient(s.app) as c:
        assert c.get("/", headers={"Authorization": f"ApiKey {key}"}).status_code == 200
        assert c.get("/api/v1/alerts", headers={"Authorization": f"ApiKey {key}"}).status_code == 403
        r = c.post("/api/v1/auth/login", json={"username": "an", "password": password})
        assert r.status_code == 200 and r.json()["role"] == "analyst"
    s.soc.close()

    kid = key[4:16]
    assert _run(tmp_path, "apikeys", "revoke", kid)[0] == 0
    assert _run(tmp_path, "users", "disable", "an")[0] == 0
    code, out = _run(tmp_path, "audit", "export")
    actions = [json.loads(line)["action"] for line in out.splitlines()]
    assert actions == ["apikey.create", "user.create", "auth.login", "apikey.revoke", "user.update", "audit.export"]
    assert key not in out and password not in out
    assert _run(tmp_path, "audit", "verify")[0] == 0
