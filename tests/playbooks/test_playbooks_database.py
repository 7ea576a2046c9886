"""disable_db_account against a real PostgreSQL started by the test (initdb + pg_ctl in a
temporary folder, as the ``postgres`` user, unix socket only), driven through the
warehouse-account-abuse playbook: nothing happens before a responder approves; after
approval the role can no longer log in and its open session is ended. Role names that
need quoting (spaces, quotes, a would-be injection) are handled as identifiers."""
from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from core.playbooks import ApprovalDenied, DatabaseTarget, PlaybookSettings
from pbhelpers import audit_actions, make_runner, record_alert
from playbooks.actions import ACTIONS, ActionContext, ActionError

psycopg = pytest.importorskip("psycopg")
from psycopg import sql  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql")


def _pg_bin() -> Path:
    if os.geteuid() != 0:
        pytest.skip("starting PostgreSQL as the postgres user needs root")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres system user (apt-get install postgresql)")
    versions = sorted(PG_BIN.glob("*/bin/pg_ctl")) if PG_BIN.exists() else []
    if not versions:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    return versions[-1].parent


@pytest.fixture(scope="module")
def postgres():
    bindir = _pg_bin()
    root = Path(tempfile.mkdtemp(prefix="citysoc-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    pw = pwd.getpwnam("postgres")
    os.chown(root, pw.pw_uid, pw.pw_gid)
    os.chown(sock, pw.pw_uid, pw.pw_gid)

    def as_pg(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True,
                              timeout=timeout)

    try:
        cp = as_pg(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        if cp.returncode:
            pytest.skip(f"initdb failed: {cp.stderr[-300:]}")
        cp = as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "30", "-l", str(root / "log"), "-o",
                   f"-c listen_addresses='' -c unix_socket_directories={sock} -c fsync=off", "start")
        if cp.returncode:
            pytest.skip(f"pg_ctl start failed: {cp.stderr[-300:]} {(root / 'log').read_text()[-300:]}")
        yield f"host={sock} dbname=postgres user=postgres"
    finally:
        as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _make_role(dsn: str, name: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
        c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))


def _can_login(dsn: str, name: str) -> bool:
    try:
        with psycopg.connect(dsn.replace("user=postgres", "") , user=name, connect_timeout=5):
            return True
    except psycopg.OperationalError:
        return False


def _settings(dsn: str) -> PlaybookSettings:
    return PlaybookSettings(databases={"warehouse": DatabaseTarget(dsn=dsn)})


def test_playbook_disables_account_only_after_approval(postgres, soc, tmp_path: Path):
    _make_role(postgres, "etl_export")
    assert _can_login(postgres, "etl_export")
    session = psycopg.connect(postgres.replace("user=postgres", ""), user="etl_export")  # an open session
    alert = record_alert(soc, rule_id="citysoc-warehouse-mass-export", tags=["citysoc.warehouse.mass_export"],
                         user="etl_export", host="dwh-01")
    runner = make_runner(soc, tmp_path, settings=_settings(postgres))

    async def scenario():
        run = await runner.start("warehouse-account-abuse", alert_id=alert.id, actor="system:playbooks",
                                 trigger="alert")
        assert run.status == "awaiting_approval", run.reason
        assert run.step("case").status == "succeeded"
        assert run.step("disable").status == "awaiting_approval"
        assert run.step("disable").inputs == {"database": "warehouse", "account": "etl_export",
                                              "terminate_sessions": True}
        assert _can_login(postgres, "etl_export"), "nothing may happen before the approval"
        with pytest.raises(ApprovalDenied, match="responder"):
            await runner.approve(run.id, actor="user:vi", role="analyst")
        return await runner.approve(run.id, actor="user:lan", role="responder", comment="confirmed with DWH team")

    run = asyncio.run(scenario())
    assert run.status == "succeeded", run.reason
    st = run.step("disable")
    assert st.approved_by == "user:lan" and st.output["could_login_before"] is True
    assert st.output["sessions_terminated"] == 1
    assert not _can_login(postgres, "etl_export")
    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")
    session.close()
    acts = [a for a, _ in audit_actions(soc, run.id)]
    assert acts == ["playbook.run.start", "playbook.step", "playbook.step", "playbook.approve", "playbook.step",
                    "playbook.run.end"]
    assert run.approvals[0].actor == "user:lan" and run.approvals[0].decision == "approved"


@pytest.mark.parametrize("name", ['Data Analyst "A"', "x; DROP ROLE postgres; --", "ETL-Ingest"])
def test_identifiers_are_quoted_not_spliced(postgres, tmp_path: Path, name: str):
    _make_role(postgres, name)
    ctx = ActionContext(settings=_settings(postgres), data_dir=tmp_path, timeout=10)
    out = ACTIONS["disable_db_account"].run(ctx, database="warehouse", account=name, terminate_sessions=False)
    assert out["could_login_before"] is True
    with psycopg.connect(postgres, autocommit=True) as c:
        rows = dict(c.execute("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname IN (%s, 'postgres')",
                              (name,)).fetchall())
    assert rows == {name: False, "postgres": True}
    ACTIONS["enable_db_account"].run(ctx, database="warehouse", account=name)
    assert _can_login(postgres, name)


def test_unknown_role_and_database_fail_clearly(postgres, tmp_path: Path):
    ctx = ActionContext(settings=_settings(postgres), data_dir=tmp_path, timeout=10)
    with pytest.raises(ActionError, match="has no role 'ghost'"):
        ACTIONS["disable_db_account"].run(ctx, database="warehouse", account="ghost")
    with pytest.raises(ActionError, match="unknown database 'crm'"):
        ACTIONS["disable_db_account"].run(ctx, database="crm", account="ghost")
