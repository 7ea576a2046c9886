"""The audit log is append-only and hash-chained; `citysoc audit verify` names the first broken entry."""
from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from citysoc.cli import main
from core.audit import verify_chain
from storage.socdb import open_socdb


@pytest.fixture
def logged(tmp_path):
    soc = open_socdb(tmp_path)
    for i in range(1, 6):
        soc.audit.append(f"user:u{i}", "alert.update", f"alert:{i}", source_ip="10.0.0.1",
                         before={"status": "new"}, after={"status": "acknowledged"})
    soc.close()
    return tmp_path


def _verify_cli(data) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["audit", "verify"], env={"CITYSOC_DATA": str(data)})
    return r.exit_code, r.output


def test_intact_chain_verifies(logged):
    code, out = _verify_cli(logged)
    assert code == 0, out
    assert "intact: 5 entries" in out


def test_database_refuses_updates_and_deletes(logged):
    conn = sqlite3.connect(logged / "soc.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit SET actor = 'x' WHERE seq = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit WHERE seq = 2")


def _tamper(path, sql):
    conn = sqlite3.connect(path / "soc.db")
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.execute(sql)
    conn.commit()
    conn.close()


def test_edited_row_is_named(logged):
    _tamper(logged, """UPDATE audit SET after = '{"status":"closed"}' WHERE seq = 3""")
    code, out = _verify_cli(logged)
    assert code == 1
    assert "entry 3" in out and "edited" in out


def test_deleted_row_is_named(logged):
    _tamper(logged, "DELETE FROM audit WHERE seq = 2")
    code, out = _verify_cli(logged)
    assert code == 1
    assert "entry 3" in out and "deleted" in out


def test_rewritten_hash_breaks_the_link_to_the_next_entry(logged):
    soc = open_socdb(logged)
    entries = list(soc.audit.iter_all())
    soc.close()
    from core.audit import entry_hash

    e = entries[1]
    e.actor = "user:mallory"
    e.hash = entry_hash(e.prev_hash, e)  # a careful forger fixes the entry's own hash ...
    r = verify_chain(entries)
    assert not r.ok and r.first_bad_seq == 3  # ... and the next entry gives it away


def test_truncation_is_caught_with_the_expected_head(logged):
    _code, out = _verify_cli(logged)
    head = out.strip().split()[-1]
    _tamper(logged, "DELETE FROM audit WHERE seq = 5")
    r = CliRunner().invoke(main, ["audit", "verify", "--expect-head", head], env={"CITYSOC_DATA": str(logged)})
    assert r.exit_code == 1 and "removed from the end" in r.output
