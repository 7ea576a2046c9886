"""Issue 18: date math that leaves the calendar is a clear 400, never a 500."""
from __future__ import annotations

V1 = "/api/v1"


def test_date_math_overflow_in_a_query_is_400(client, hdr):
    r = client.get(f"{V1}/events/search", params={"q": "@timestamp:[now-9999999999d TO now]"}, headers=hdr("analyst"))
    assert r.status_code == 400, r.text
    r = client.get(f"{V1}/events/count", params={"q": "@timestamp:[now-99999999999999999999999w TO now]"},
                   headers=hdr("analyst"))
    assert r.status_code == 400, r.text


def test_time_bound_overflow_is_400(client, hdr):
    for bound in ("now-99999999999999w", "now-999999999d", "99999999999999999999w"):
        r = client.get(f"{V1}/events/search", params={"q": "*", "from": bound}, headers=hdr("analyst"))
        assert r.status_code in (400, 422), (bound, r.status_code, r.text)
