"""FeedManager: file reloads on change, last good set kept on failure, atomic index swap,
and HTTP feeds from a real http.server on 127.0.0.1 with ETag/If-None-Match (304)."""
from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from detections.intel import FeedManager, FeedSpec, IntelMatcher

FIX = Path(__file__).parent / "fixtures_intel"


def _ips(mgr: FeedManager) -> set[str]:
    return set(mgr.current().ips)


def test_file_feed_reload_unchanged_and_last_good_kept(tmp_path: Path):
    feed = tmp_path / "partners.csv"
    feed.write_text("type,value\nip,192.0.2.1\n")
    mgr = FeedManager([FeedSpec("partners", str(feed), refresh_s=0)])
    assert mgr.refresh() == {"partners": "loaded"}
    first = mgr.current()
    assert _ips(mgr) == {"192.0.2.1"}
    assert mgr.refresh() == {"partners": "unchanged"} and mgr.current() is first

    feed.write_text("type,value\nip,192.0.2.2\n")
    assert mgr.refresh() == {"partners": "loaded"}
    assert _ips(mgr) == {"192.0.2.2"}

    feed.write_text("value\n192.0.2.3\n")  # broken: no type column
    outcome = mgr.refresh()
    assert outcome["partners"].startswith("failed: ") and "header must name" in outcome["partners"]
    assert _ips(mgr) == {"192.0.2.2"}  # last good set still in force
    [st] = mgr.status()
    assert st["last_error"] and st["counts"] == {"ip": 1}

    feed.unlink()
    assert mgr.refresh()["partners"].startswith("failed: ")
    assert _ips(mgr) == {"192.0.2.2"}
    mgr.close()


def test_feeds_are_refreshed_only_when_due(tmp_path: Path):
    feed = tmp_path / "a.csv"
    feed.write_text("type,value\nip,192.0.2.1\n")
    mgr = FeedManager([FeedSpec("a", str(feed), refresh_s=3600)])
    mgr.refresh()
    feed.write_text("type,value\nip,192.0.2.9\n")
    assert mgr.refresh() == {"a": "not due"} and _ips(mgr) == {"192.0.2.1"}
    assert mgr.refresh(force=True) == {"a": "loaded"} and _ips(mgr) == {"192.0.2.9"}
    mgr.close()


def test_misp_folder_and_several_feeds_in_one_index(tmp_path: Path):
    folder = tmp_path / "misp"
    shutil.copytree(FIX / "misp_feed", folder)
    mgr = FeedManager([FeedSpec("circl", str(folder), refresh_s=0), FeedSpec.parse(str(FIX / "partner_iocs.csv"))])
    assert mgr.refresh() == {"circl": "loaded", "partner_iocs": "loaded"}
    assert mgr.current().feeds == ("circl", "partner_iocs")
    matcher = IntelMatcher(mgr.current)
    [d] = matcher.process({"destination": {"ip": "203.0.113.77"}})
    assert d.rule_id == "intel:circl" and d.level == "critical"
    # an event file changes inside the folder: the folder's signature changes
    ev = folder / "5f3a1c2e-2222-4a4a-9b9b-000000000002.json"
    ev.write_text(ev.read_text().replace("198.18.0.9", "198.18.0.10"))
    assert mgr.refresh()["circl"] == "loaded"
    assert matcher.process({"destination": {"ip": "198.18.0.10"}})[0].rule_id == "intel:circl"
    mgr.close()


def test_spec_validation():
    assert FeedSpec.parse("vn=https://x.example/f.json").name == "vn"
    assert FeedSpec.parse("https://x.example/feeds/f.json?key=a=b").name == "f"
    with pytest.raises(ValueError, match="unknown format"):
        FeedSpec("a", "x", format="xml")
    with pytest.raises(ValueError, match="unique"):
        FeedManager([FeedSpec("a", "x"), FeedSpec("a", "y")])


class _Feeds:
    """What the test server serves, and what it saw."""

    def __init__(self) -> None:
        self.docs: dict[str, bytes] = {}
        self.fail = False
        self.requests: list[tuple[str, str | None]] = []
        self.not_modified = 0


@pytest.fixture()
def server():
    state = _Feeds()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append((self.path, self.headers.get("If-None-Match")))
            if state.fail:
                self.send_error(503, "maintenance")
                return
            body = state.docs.get(self.path)
            if body is None:
                self.send_error(404)
                return
            etag = '"%08x"' % (hash(body) & 0xFFFFFFFF)
            if self.headers.get("If-None-Match") == etag:
                state.not_modified += 1
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("ETag", etag)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield state, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    t.join(timeout=5)


def test_http_feed_with_etag_304_and_failure_keeps_last_good(server):
    state, base = server
    state.docs["/feeds/cert.json"] = (FIX / "cert_bundle.json").read_bytes()
    mgr = FeedManager([FeedSpec("cert", f"{base}/feeds/cert.json", refresh_s=0)])
    assert mgr.refresh() == {"cert": "loaded"}
    assert "203.0.113.50" in _ips(mgr)
    assert state.requests[-1][1] is None  # first request: nothing to validate against

    assert mgr.refresh() == {"cert": "unchanged"}
    assert state.not_modified == 1 and state.requests[-1][1] is not None

    state.fail = True
    outcome = mgr.refresh()
    assert outcome["cert"].startswith("failed: ") and "HTTP 503" in outcome["cert"]
    assert "203.0.113.50" in _ips(mgr)

    state.fail = False
    doc = json.loads(state.docs["/feeds/cert.json"])
    doc["objects"].append({"type": "ipv4-addr", "id": "ipv4-addr--new", "value": "192.0.2.123"})
    state.docs["/feeds/cert.json"] = json.dumps(doc).encode()
    assert mgr.refresh() == {"cert": "loaded"}
    assert {"203.0.113.50", "192.0.2.123"} <= _ips(mgr)

    state.docs["/feeds/cert.json"] = b"{broken"
    assert "invalid JSON" in mgr.refresh()["cert"]
    assert "192.0.2.123" in _ips(mgr)
    mgr.close()


def test_http_feed_larger_than_the_limit_is_refused(server):
    state, base = server
    state.docs["/big.csv"] = b"type,value\n" + b"ip,192.0.2.1\n" * 10_000
    mgr = FeedManager([FeedSpec("big", f"{base}/big.csv")], max_bytes=50_000)
    try:
        assert "larger than 50000 bytes" in mgr.refresh()["big"]
    finally:
        mgr.close()


def test_http_misp_feed_via_manifest(server):
    state, base = server
    for p in (FIX / "misp_feed").iterdir():
        state.docs[f"/misp/{p.name}"] = p.read_bytes()
    mgr = FeedManager([FeedSpec("circl", f"{base}/misp/manifest.json", refresh_s=0)])
    assert mgr.refresh() == {"circl": "loaded"}
    assert mgr.current().counts == {"ip": 2, "cidr": 1, "domain": 2, "sha256": 1, "md5": 1, "url": 1}
    assert mgr.refresh() == {"circl": "unchanged"} and state.not_modified == 1
    mgr.close()


def test_background_refresh_thread_picks_up_changes(tmp_path: Path):
    feed = tmp_path / "a.csv"
    feed.write_text("type,value\nip,192.0.2.1\n")
    mgr = FeedManager([FeedSpec("a", str(feed), refresh_s=0)])
    mgr.refresh()
    feed.write_text("type,value\nip,192.0.2.2\n")
    mgr.start(interval_s=0.05)
    try:
        for _ in range(100):
            if _ips(mgr) == {"192.0.2.2"}:
                break
            threading.Event().wait(0.05)
        assert _ips(mgr) == {"192.0.2.2"}
    finally:
        mgr.close()


def test_old_file_with_same_mtime_and_size_is_not_even_read(tmp_path: Path):
    import os

    feed = tmp_path / "a.csv"
    feed.write_text("type,value\nip,192.0.2.1\n")
    old = 1_700_000_000_000_000_000
    os.utime(feed, ns=(old, old))
    mgr = FeedManager([FeedSpec("a", str(feed), refresh_s=0)])
    try:
        assert mgr.refresh() == {"a": "loaded"}
        # Same size, same (old) mtime, different bytes: the stat shortcut skips reading it.
        feed.write_text("type,value\nip,192.0.2.9\n")
        os.utime(feed, ns=(old, old))
        assert mgr.refresh() == {"a": "unchanged"} and _ips(mgr) == {"192.0.2.1"}
        # A fresh mtime is "racy": the file is hashed and the change seen.
        feed.write_text("type,value\nip,192.0.2.8\n")
        assert mgr.refresh() == {"a": "loaded"} and _ips(mgr) == {"192.0.2.8"}
    finally:
        mgr.close()


def test_deeply_nested_json_feed_fails_cleanly_and_keeps_last_good(tmp_path: Path):
    feed = tmp_path / "f.json"
    feed.write_text(json.dumps({"type": "bundle", "objects": [{"type": "ipv4-addr", "value": "192.0.2.1"}]}))
    mgr = FeedManager([FeedSpec("f", str(feed), refresh_s=0)])
    try:
        assert mgr.refresh() == {"f": "loaded"}
        feed.write_text("[" * 200_000 + "]" * 200_000)
        outcome = mgr.refresh()["f"]
        assert outcome == f"failed: {feed}: JSON nested too deeply to be a feed"
        assert _ips(mgr) == {"192.0.2.1"}
    finally:
        mgr.close()
