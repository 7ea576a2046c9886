"""disable_db_account against a real MariaDB started by the test (mariadb-install-db +
mariadbd in a temporary folder as the ``mysql`` user, unix socket only, no network):
ACCOUNT LOCK on every host entry of the user, its open session killed, names that need
quoting handled as bound literals; then the warehouse playbook against it."""
from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from core.playbooks import DatabaseTarget, PlaybookSettings
from pbhelpers import make_runner, record_alert
from playbooks.actions import ACTIONS, ActionContext, ActionError

pymysql = pytest.importorskip("pymysql")


@pytest.fixture(scope="module")
def mariadb():
    if os.geteuid() != 0:
        pytest.skip("starting MariaDB as the mysql user needs root")
    if not (shutil.which("mariadbd") or Path("/usr/sbin/mariadbd").exists()) or not shutil.which("mariadb-install-db"):
        pytest.skip("MariaDB server is not installed (apt-get install mariadb-server)")
    try:
        pw = pwd.getpwnam("mysql")
    except KeyError:
        pytest.skip("no mysql system user")
    root = Path(tempfile.mkdtemp(prefix="citysoc-mdb-"))
    data, run = root / "data", root / "run"
    for d in (root, data, run):
        d.mkdir(exist_ok=True)
        os.chown(d, pw.pw_uid, pw.pw_gid)
    sock = run / "s.sock"
    proc = None
    try:
        cp = subprocess.run(["runuser", "-u", "mysql", "--", "mariadb-install-db", f"--datadir={data}",
                             "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"],
                            capture_output=True, text=True, timeout=120)
        if cp.returncode:
            pytest.skip(f"mariadb-install-db failed: {cp.stderr[-300:]}")
        mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        proc = subprocess.Popen(["runuser", "-u", "mysql", "--", mariadbd, "--no-defaults", f"--datadir={data}",
                                 f"--socket={sock}", "--skip-networking", f"--pid-file={run / 'p.pid'}",
                                 f"--log-error={run / 'err.log'}", "--innodb-buffer-pool-size=16M"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                pymysql.connect(unix_socket=str(sock), user="root", password="").close()
                break
            except pymysql.MySQLError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.skip("mariadbd did not start: " + (run / "err.log").read_text()[-300:])
                time.sleep(0.1)
        yield sock
    finally:
        if proc is not None:
            pid_file = run / "p.pid"
            try:  # a throw-away server: kill it outright (runuser cannot forward SIGKILL, so by its pid)
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
            except (OSError, ValueError):
                proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(root, ignore_errors=True)


def _root(sock: Path):
    return pymysql.connect(unix_socket=str(sock), user="root", password="", autocommit=True)


def _make_user(sock: Path, name: str, hosts=("%", "localhost")) -> None:
    with _root(sock) as c, c.cursor() as cur:
        for h in hosts:
            cur.execute("DROP USER IF EXISTS %s@%s", (name, h))
            cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (name, h, "pw-123"))


def _can_login(sock: Path, name: str) -> bool:
    try:
        pymysql.connect(unix_socket=str(sock), user=name, password="pw-123").close()
        return True
    except pymysql.MySQLError:
        return False


def _settings(sock: Path) -> PlaybookSettings:
    return PlaybookSettings(databases={"warehouse": DatabaseTarget(engine="mariadb",
                                                                   dsn=f"unix_socket={sock} user=root password=")})


@pytest.mark.parametrize("name", ["etl_export", "o'brien", "x'@'%'; DROP USER root@localhost; --x"])
def test_account_lock_on_every_host_and_session_killed(mariadb, tmp_path: Path, name: str):
    _make_user(mariadb, name)
    assert _can_login(mariadb, name)
    session = pymysql.connect(unix_socket=str(mariadb), user=name, password="pw-123")
    ctx = ActionContext(settings=_settings(mariadb), data_dir=tmp_path, timeout=10)
    out = ACTIONS["disable_db_account"].run(ctx, database="warehouse", account=name)
    assert out["could_login_before"] is True and out["sessions_terminated"] == 1
    assert not _can_login(mariadb, name)
    with pytest.raises(pymysql.MySQLError):
        with session.cursor() as cur:
            cur.execute("SELECT 1")
    with _root(mariadb) as c, c.cursor() as cur:
        cur.execute("SELECT User, Host, JSON_VALUE(Priv, '$.account_locked') FROM mysql.global_priv "
                    "WHERE User IN (%s, 'root') ORDER BY User, Host", (name,))
        rows = cur.fetchall()
    assert sorted((u, h, str(lk)) for u, h, lk in rows if u == name) == [(name, "%", "1"), (name, "localhost", "1")]
    assert ("root", "localhost") in {(u, h) for u, h, _ in rows}, "root must survive a hostile account name"
    ACTIONS["enable_db_account"].run(ctx, database="warehouse", account=name)
    assert _can_login(mariadb, name)


def test_mariadb_errors_are_clear(mariadb, tmp_path: Path):
    ctx = ActionContext(settings=_settings(mariadb), data_dir=tmp_path, timeout=10)
    with pytest.raises(ActionError, match="has no user 'ghost'"):
        ACTIONS["disable_db_account"].run(ctx, database="warehouse", account="ghost")
    bad = ActionContext(settings=PlaybookSettings(databases={"w": DatabaseTarget(engine="mariadb", dsn="sock=/x")}),
                        data_dir=tmp_path, timeout=5)
    with pytest.raises(ActionError, match="'sock' is not one of"):
        ACTIONS["disable_db_account"].run(bad, database="w", account="x")
    assert "ACCOUNT LOCK" in ACTIONS["disable_db_account"].describe(ctx, database="warehouse", account="o'brien")


def test_warehouse_playbook_locks_a_mariadb_account_after_approval(mariadb, soc, tmp_path: Path):
    _make_user(mariadb, "bi_reader")
    runner = make_runner(soc, tmp_path, settings=_settings(mariadb))
    alert = record_alert(soc, tags=["citysoc.warehouse.privilege_grant"], user="bi_reader", host="dwh-02")

    async def scenario():
        run = await runner.start("warehouse-account-abuse", alert_id=alert.id, actor="system:playbooks",
                                 trigger="alert")
        assert run.status == "awaiting_approval" and _can_login(mariadb, "bi_reader")
        return await runner.approve(run.id, actor="user:lan", role="responder")

    run = asyncio.run(scenario())
    assert run.status == "succeeded", run.reason
    assert not _can_login(mariadb, "bi_reader")
