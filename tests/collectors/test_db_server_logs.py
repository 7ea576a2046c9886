"""Real database servers write the logs, our parsers read them back.

A MariaDB (``mariadb-install-db`` + ``mariadbd`` as the ``mysql`` user in a temporary
folder, ``--log-warnings=4``, loopback TCP on a free port) and a PostgreSQL (``initdb`` +
``pg_ctl`` as ``postgres``, ``log_destination = 'stderr,csvlog'``, ``log_connections``,
password authentication) are started by the test; refused logins are made against them
over TCP and the unix socket, and every line of their logs is parsed: refused logins
must come back as ``db-login`` failures with the user and the client address, and no
line may be left unparsed. Skipped (with the reason) without root or the servers.
"""
from __future__ import annotations

import datetime as dt
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from collectors.parsers import parse_record
from core.protocols import RawRecord

pymysql = pytest.importorskip("pymysql")
psycopg = pytest.importorskip("psycopg")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _user(name: str) -> pwd.struct_passwd:
    if os.geteuid() != 0:
        pytest.skip(f"starting the server as the {name} user needs root")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pytest.skip(f"no {name} system user")


def _parse_lines(lines: list[str], fmt: str) -> list[dict]:
    return [parse_record(RawRecord(ln.encode(), format=fmt, meta={"timezone": "UTC"})) for ln in lines if ln.strip()]


@pytest.fixture(scope="module")
def mariadb_log() -> list[str]:
    """The error log of a MariaDB that refused four logins and had one session killed."""
    pw = _user("mysql")
    if not Path("/usr/sbin/mariadbd").exists() or not shutil.which("mariadb-install-db"):
        pytest.skip("MariaDB server is not installed (apt-get install mariadb-server)")
    root = Path(tempfile.mkdtemp(prefix="citysoc-mdblog-"))
    data, run = root / "data", root / "run"
    for d in (root, data, run):
        d.mkdir(exist_ok=True)
        os.chown(d, pw.pw_uid, pw.pw_gid)
    sock, port, err = run / "s.sock", _free_port(), run / "err.log"
    proc = None
    try:
        cp = subprocess.run(["runuser", "-u", "mysql", "--", "mariadb-install-db", f"--datadir={data}",
                             "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"],
                            capture_output=True, text=True, timeout=120)
        if cp.returncode:
            pytest.skip(f"mariadb-install-db failed: {cp.stderr[-300:]}")
        proc = subprocess.Popen(["runuser", "-u", "mysql", "--", "/usr/sbin/mariadbd", "--no-defaults",
                                 f"--datadir={data}", f"--socket={sock}", "--bind-address=127.0.0.1", f"--port={port}",
                                 "--skip-name-resolve", f"--pid-file={run / 'p.pid'}", f"--log-error={err}",
                                 "--innodb-buffer-pool-size=16M", "--log-warnings=4"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                pymysql.connect(unix_socket=str(sock), user="root", password="").close()
                break
            except pymysql.MySQLError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.skip("mariadbd did not start: " + (err.read_text()[-300:] if err.exists() else ""))
                time.sleep(0.1)
        with pymysql.connect(unix_socket=str(sock), user="root", password="", autocommit=True) as c, c.cursor() as cur:
            for host in ("%", "localhost"):
                cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", ("etl_svc", host, "right-pw"))
            for user, password in (("etl_svc", "wrong"), ("nobody", "x")):
                with pytest.raises(pymysql.MySQLError):
                    pymysql.connect(unix_socket=str(sock), user=user, password=password)
            for user in ("etl_svc", "root"):
                with pytest.raises(pymysql.MySQLError):
                    pymysql.connect(host="127.0.0.1", port=port, user=user, password="guess", connect_timeout=5)
            victim = pymysql.connect(host="127.0.0.1", port=port, user="etl_svc", password="right-pw")
            cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'etl_svc'")
            cur.execute(f"KILL {int(cur.fetchone()[0])}")
            victim.close()
        os.kill(int((run / "p.pid").read_text().strip()), signal.SIGTERM)  # a clean shutdown writes its lines
        proc.wait(30)
        proc = None
        return err.read_text(encoding="utf-8", errors="replace").splitlines()
    finally:
        if proc is not None:
            try:
                os.kill(int((run / "p.pid").read_text().strip()), signal.SIGKILL)
            except (OSError, ValueError):
                proc.terminate()
            proc.wait(20)
        shutil.rmtree(root, ignore_errors=True)


def test_mariadb_error_log_refused_logins(mariadb_log: list[str]) -> None:
    events = _parse_lines(mariadb_log, "mysql_error")
    assert not [e["event"]["original"] for e in events if "mysql_error_unparsed" in e.get("tags", ())]
    logins = [e for e in events if e["event"].get("action") == "db-login"]
    got = sorted((e["user"]["name"], e["source"].get("ip") or e["source"].get("domain")) for e in logins)
    assert got == [("etl_svc", "127.0.0.1"), ("etl_svc", "localhost"), ("nobody", "localhost"),
                   ("root", "127.0.0.1")], got
    assert all(e["event"]["outcome"] == "failure" and "authentication" in e["event"]["category"] for e in logins)
    now = dt.datetime.now(dt.timezone.utc)
    for e in logins:  # the server's local time (UTC here) read back as the moment of the attempt
        assert abs(dt.datetime.fromisoformat(e["@timestamp"].replace("Z", "+00:00")) - now) < dt.timedelta(minutes=5)
    aborted = [e for e in events if e["event"].get("action") == "db-connection-aborted"]
    assert any(e["user"]["name"] == "etl_svc" and e["source"]["ip"] == "127.0.0.1" for e in aborted)
    assert {"db-server-ready", "db-server-shutdown"} <= {e["event"].get("action") for e in events}


def test_mariadb_refused_login_is_found_by_sniffing(mariadb_log: list[str]) -> None:
    line = next(ln for ln in mariadb_log if "Access denied for user 'root'" in ln)
    ev = parse_record(RawRecord(line.encode(), format="auto"))
    assert ev["event"]["dataset"] == "mysql.error" and ev["source"]["ip"] == "127.0.0.1"


@pytest.fixture(scope="module")
def postgres_logs() -> tuple[list[str], str]:
    """(stderr lines, csvlog text) of a PostgreSQL that refused two password logins."""
    pw = _user("postgres")
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not versions:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    bindir = versions[-1].parent
    root = Path(tempfile.mkdtemp(prefix="citysoc-pglog-"))
    data, sock, logs = root / "data", root / "sock", root / "logs"
    for d in (sock, logs):
        d.mkdir()
    for d in (root, sock, logs):
        os.chown(d, pw.pw_uid, pw.pw_gid)
    port = _free_port()
    pwfile = root / "pw"
    pwfile.write_text("super-pw\n")
    os.chown(pwfile, pw.pw_uid, pw.pw_gid)

    def as_pg(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True, timeout=60)

    try:
        cp = as_pg(str(bindir / "initdb"), "-D", str(data), "-A", "scram-sha-256", "-U", "postgres",
                   f"--pwfile={pwfile}", "--no-sync")
        if cp.returncode:
            pytest.skip(f"initdb failed: {cp.stderr[-300:]}")
        opts = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={sock} -c fsync=off "
                f"-c logging_collector=on -c log_destination=stderr,csvlog -c log_directory={logs} "
                "-c log_filename=pg -c log_connections=on -c log_disconnections=on "
                "-c log_line_prefix='%m [%p] %q%u@%d ' -c log_statement=ddl")
        cp = as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "30", "-l", str(root / "start.log"), "-o",
                   opts, "start")
        if cp.returncode:
            pytest.skip(f"pg_ctl start failed: {cp.stderr[-300:]}")
        dsn = f"host=127.0.0.1 port={port} dbname=postgres"
        with psycopg.connect(dsn, user="postgres", password="super-pw", autocommit=True) as c:
            c.execute("CREATE ROLE analyst LOGIN PASSWORD 'right-pw'")
            c.execute("CREATE TABLE trips (id int)")
        for user in ("analyst", "postgres"):
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(dsn, user=user, password="wrong", connect_timeout=5)
        as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        return ((logs / "pg").read_text(encoding="utf-8").splitlines(),
                (logs / "pg.csv").read_text(encoding="utf-8"))
    finally:
        as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _refused(events: list[dict]) -> list[tuple[str, str]]:
    return sorted((e["user"]["name"], e["source"]["ip"]) for e in events
                  if e["event"].get("action") == "db-login" and e["event"].get("outcome") == "failure"
                  and "source" in e)


def test_postgres_stderr_log_refused_logins(postgres_logs: tuple[list[str], str]) -> None:
    stderr, _ = postgres_logs
    events = _parse_lines(stderr, "postgres")
    assert all(e["event"]["dataset"] == "postgresql.log" and "log" in e for e in events)
    # the refusal names the user; the client address is on the "connection received" line of the same pid
    pids = {e["process"]["pid"]: e["source"]["ip"] for e in events
            if e["event"].get("action") == "db-connection-received"}
    refused = sorted((e["user"]["name"], pids.get(e["process"]["pid"])) for e in events
                     if e["event"].get("action") == "db-login" and e["event"].get("outcome") == "failure")
    assert refused == [("analyst", "127.0.0.1"), ("postgres", "127.0.0.1")], refused
    assert any(e["event"].get("action") == "db-query" and e["db"]["operation"] == "CREATE" for e in events)


def test_postgres_csvlog_refused_logins(postgres_logs: tuple[list[str], str]) -> None:
    _, csv_text = postgres_logs
    records: list[str] = []  # one record per line unless a quoted value spans lines
    for line in csv_text.splitlines():
        if records and records[-1].count('"') % 2:
            records[-1] += "\n" + line
        else:
            records.append(line)
    events = _parse_lines(records, "postgres")
    assert not [e["event"]["original"] for e in events if "postgres_csv_malformed" in e.get("tags", ())]
    assert _refused(events) == [("analyst", "127.0.0.1"), ("postgres", "127.0.0.1")]
    failed = [e for e in events if e["event"].get("outcome") == "failure" and e["event"].get("action") == "db-login"]
    assert {e["error"]["code"] for e in failed} == {"28P01"} and {e["log"]["level"] for e in failed} == {"FATAL"}
