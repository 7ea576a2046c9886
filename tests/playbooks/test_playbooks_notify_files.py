"""Real transports and files: signed webhooks to an HTTP server on loopback, e-mail to a
real SMTP server, quarantine and restore of a file with a real YARA rescan, and the
allow-list of http_request."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.playbooks import PlaybookInputError, PlaybookSettings, SmtpSettings, WebhookTarget
from core.protocols import ScanFinding
from pbhelpers import make_runner, record_alert
from playbooks.actions import ACTIONS, ActionContext, ActionError, validate_params
from smtp_sink import SmtpSink


class _Receiver(BaseHTTPRequestHandler):
    got: list[tuple[dict[str, str], bytes]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).got.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    do_GET = do_POST

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_server():
    _Receiver.got = []
    _Receiver.status = 200
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", _Receiver
    srv.shutdown()
    srv.server_close()


def _ctx(tmp_path: Path, **kw) -> ActionContext:
    return ActionContext(settings=PlaybookSettings(**kw), data_dir=tmp_path, timeout=5, run_id=7, playbook="pb",
                         step="s")


def test_webhook_is_signed_and_verifiable(http_server, tmp_path: Path):
    url, rec = http_server
    ctx = _ctx(tmp_path, webhooks={"forecasting-center": WebhookTarget(url=url + "/hook", secret="s3cret")})
    out = ACTIONS["notify_webhook"].run(ctx, target="forecasting-center", text="model changed", fields={"a": 1})
    assert out == {"status": 200, "target": "forecasting-center"}
    headers, body = rec.got[0]
    expected = "sha256=" + hmac.new(b"s3cret", headers["x-citysoc-timestamp"].encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-citysoc-signature"], expected)
    assert abs(int(headers["x-citysoc-timestamp"]) - time.time()) < 60
    doc = json.loads(body)
    assert doc["text"] == "model changed" and doc["fields"] == {"a": 1} and doc["run_id"] == 7


@pytest.mark.parametrize("fmt,key", [("slack", "text"), ("teams", "@type"), ("telegram", "chat_id")])
def test_webhook_formats(http_server, tmp_path: Path, fmt: str, key: str):
    url, rec = http_server
    ctx = _ctx(tmp_path, webhooks={"t": WebhookTarget(url=url, format=fmt, chat_id="-100")})
    ACTIONS["notify_webhook"].run(ctx, target="t", text="hi")
    assert key in json.loads(rec.got[0][1]) and "x-citysoc-signature" not in rec.got[0][0]


def test_webhook_errors_say_what(http_server, tmp_path: Path):
    url, rec = http_server
    rec.status = 500
    ctx = _ctx(tmp_path, webhooks={"t": WebhookTarget(url=url)})
    with pytest.raises(ActionError, match="answered HTTP 500"):
        ACTIONS["notify_webhook"].run(ctx, target="t", text="x")
    with pytest.raises(ActionError, match="unknown webhook target 'nope'"):
        ACTIONS["notify_webhook"].run(ctx, target="nope", text="x")


def test_email_reaches_smtp_and_header_injection_is_refused(tmp_path: Path):
    sink = SmtpSink()
    try:
        ctx = _ctx(tmp_path, smtp=SmtpSettings(port=sink.port, sender="soc@hcmc.example"))
        out = ACTIONS["notify_email"].run(ctx, to=["a@hcmc.example", "b@hcmc.example"], subject="Hello", body="Body")
        assert out["recipients"] == ["a@hcmc.example", "b@hcmc.example"]
        rcpt, msg = sink.wait_for(1)[0]
        assert rcpt == ["a@hcmc.example", "b@hcmc.example"] and msg["Subject"] == "Hello"
        assert msg["X-Citysoc-Run"] == "7"
    finally:
        sink.close()
    with pytest.raises(PlaybookInputError, match="single line"):
        validate_params(ACTIONS["notify_email"], {"subject": "x\r\nBcc: evil@example.com", "body": "b"})
    with pytest.raises(PlaybookInputError, match="not an e-mail address"):
        validate_params(ACTIONS["notify_email"], {"to": ["not-an-address"], "subject": "x", "body": "b"})
    with pytest.raises(ActionError, match="no recipients"):
        ACTIONS["notify_email"].run(_ctx(tmp_path), subject="x", body="y")


def test_http_request_only_to_allowed_hosts(http_server, tmp_path: Path):
    url, rec = http_server
    ctx = _ctx(tmp_path, http_allowed_hosts=["127.0.0.1"])
    out = ACTIONS["http_request"].run(ctx, url=url + "/x", method="POST", json={"q": 1})
    assert out["status"] == 200 and out["json"] == {"ok": True}
    with pytest.raises(ActionError, match="not in playbooks.http_allowed_hosts"):
        ACTIONS["http_request"].run(_ctx(tmp_path, http_allowed_hosts=["*.hcmc.example"]), url=url)
    with pytest.raises(ActionError, match="not an http"):
        ACTIONS["http_request"].run(ctx, url="file:///etc/passwd")
    with pytest.raises(ActionError, match="carries a secret"):
        ACTIONS["http_request"].run(ctx, url=url, headers={"Authorization": "Bearer abc"})
    cred = _ctx(tmp_path, http_allowed_hosts=["127.0.0.1"], http_credentials={"cmdb": "Bearer t0k3n"})
    ACTIONS["http_request"].run(cred, url=url + "/c", credential="cmdb")
    assert rec.got[-1][0]["authorization"] == "Bearer t0k3n"


class _RealYara:
    """The real YARA engine of detections.yara, through the core AttachmentScanner protocol."""

    def __init__(self) -> None:
        yara = pytest.importorskip("yara")
        self.rules = yara.compile(source='rule test_webshell : webshell { strings: $a = "eval($_POST" condition: $a }')

    def scan_file(self, path: str) -> list[ScanFinding]:
        return [ScanFinding(rule=m.rule, namespace=m.namespace, tags=list(m.tags)) for m in self.rules.match(path)]


def test_yara_hit_in_ingest_folder_quarantines_and_restores(soc, tmp_path: Path):
    ingest = tmp_path / "warehouse" / "ingest"
    ingest.mkdir(parents=True)
    bad = ingest / "loader.php"
    content = b"<?php eval($_POST['c']); ?>"
    bad.write_bytes(content)
    settings = PlaybookSettings(quarantine_roots=[ingest])
    runner = make_runner(soc, tmp_path, settings=settings, rescan=_RealYara())
    alert = record_alert(soc, rule_id="yara:webshells.php_eval", tags=["citysoc.warehouse.ingest_yara"],
                         extra={"file": {"path": str(bad)}})
    assert [p.name for p in runner.matching(alert)] == ["warehouse-ingest-yara"]
    dry = asyncio.run(runner.start("warehouse-ingest-yara", alert_id=alert.id, actor="t", dry_run=True))
    assert bad.exists() and "would move" in dry.step("quarantine").would
    run = asyncio.run(runner.start("warehouse-ingest-yara", alert_id=alert.id, actor="t"))
    assert run.status == "succeeded", run.reason
    q = run.step("quarantine").output
    assert not bad.exists()
    assert q["sha256"] == hashlib.sha256(content).hexdigest() and q["findings"][0]["rule"] == "test_webshell"
    qdir = tmp_path / "data" / "quarantine" / q["quarantine_id"]
    meta = json.loads((qdir / "meta.json").read_text())
    assert meta["original_path"] == str(bad.resolve()) and meta["run_id"] == run.id
    assert (qdir / "file").stat().st_mode & 0o777 == 0o400
    case = soc.cases.get_case(run.step("case").output["case_id"])
    assert q["sha256"] in case.description and case.alert_ids == [alert.id]
    ctx = ActionContext(settings=settings, data_dir=tmp_path / "data", timeout=5)
    assert ACTIONS["restore_file"].run(ctx, quarantine_id=q["quarantine_id"])["path"] == str(bad.resolve())
    assert bad.read_bytes() == content


def test_quarantine_refuses_outside_roots_and_symlinks(tmp_path: Path):
    root = tmp_path / "ingest"
    root.mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_text("x")
    (root / "link").symlink_to(outside)
    ctx = _ctx(tmp_path, quarantine_roots=[root])
    with pytest.raises(ActionError, match="outside the folders"):
        ACTIONS["quarantine_file"].run(ctx, path=str(outside))
    with pytest.raises(ActionError, match="not a regular file"):
        ACTIONS["quarantine_file"].run(ctx, path=str(root / "link"))
    with pytest.raises(ActionError, match="not an absolute path"):
        ACTIONS["quarantine_file"].run(ctx, path="ingest/../secret.txt")
    assert outside.exists()


def test_forecasting_model_change_tells_the_center_and_opens_a_case(http_server, soc, tmp_path: Path):
    url, rec = http_server
    sink = SmtpSink()
    try:
        settings = PlaybookSettings(
            webhooks={"forecasting-center": WebhookTarget(url=url + "/soc", secret="k", format="generic")},
            smtp=SmtpSettings(port=sink.port, default_to=["forecast-ops@hcmc.example"]))
        runner = make_runner(soc, tmp_path, settings=settings)
        alert = record_alert(soc, rule_id="citysoc-forecasting-model-write", tags=["citysoc.forecasting.model_changed"],
                             host="fc-train-02", extra={"file": {"path": "/models/traffic/v12.onnx"}})
        (run,) = asyncio.run(_on_new(runner, alert))
        assert run.status == "succeeded", run.reason
        assert [s.status for s in run.steps] == ["succeeded"] * 3
        body = json.loads(rec.got[0][1])
        assert body["fields"] == {"alert_id": alert.id, "path": "/models/traffic/v12.onnx", "host": "fc-train-02"}
        assert "x-citysoc-signature" in rec.got[0][0]
        assert "/models/traffic/v12.onnx" in sink.wait_for(1)[0][1]["Subject"]
        assert soc.cases.get_case(run.step("case").output["case_id"]).alert_ids == [alert.id]
    finally:
        sink.close()


async def _on_new(runner, alert):
    from core.alerts import AlertChange

    started = await runner.on_alerts([AlertChange(alert=alert, created=True)])
    await runner.drain()
    return [runner.get_run(r.id) for r in started]


def test_enrich_reads_the_inventory_and_threat_intel(tmp_path: Path):
    """The callables wiring hands in: the asset inventory and a real intel FeedManager over a CSV feed."""
    from citysoc.wiring import intel_lookup_for
    from detections.intel.manager import FeedManager, FeedSpec

    feed = tmp_path / "feed.csv"
    feed.write_text("type,value,source,description\nip,203.0.113.9,cert-vn,camera botnet C2\n"
                    "domain,evil.example,cert-vn,phishing\n")
    mgr = FeedManager([FeedSpec("cert", str(feed))])
    mgr.refresh(force=True)
    ctx = ActionContext(settings=PlaybookSettings(), data_dir=tmp_path, timeout=5,
                        asset_lookup=lambda v: {"name": "cam-q1-017", "type": "camera"} if v == "10.1.2.3" else None,
                        intel_lookup=intel_lookup_for(mgr))
    out = ACTIONS["enrich"].run(ctx, indicator="203.0.113.9")
    assert out["sources"] == ["assets", "intel"] and out["asset"] is None
    assert out["intel"][0]["description"] == "camera botnet C2" and out["intel"][0]["feed"] == "cert"
    assert ACTIONS["enrich"].run(ctx, indicator="evil.example")["intel"][0]["type"] == "domain"
    assert ACTIONS["enrich"].run(ctx, indicator="10.1.2.3") == {"asset": {"name": "cam-q1-017", "type": "camera"},
                                                                 "intel": [], "sources": ["assets", "intel"]}
    mgr.close()


ATTACK = ("<!channel> <@U024BE7LH> @everyone @here *urgent* _x_ ~y~ `z` [login](http://evil.example/p) "
          "<http://evil.example|portal> <at>admin</at> # head | t & co, mail ops@city.example")


@pytest.mark.parametrize("fmt", ["slack", "teams", "telegram"])
def test_chat_text_from_log_content_is_shown_not_interpreted(http_server, tmp_path: Path, fmt: str):
    """Issue 18: a user name from a syslog line reached Slack as ``<!channel>`` and paged
    everyone. The rendered step text is escaped per channel before it is posted."""
    from playbooks.templating import compile_template

    url, rec = http_server
    alert = {"entities": {"user": ATTACK}, "title": "Factory account login"}
    text = compile_template("{{ alert.title }} by {{ alert.entities.user }}").render({"alert": alert})
    ctx = _ctx(tmp_path, webhooks={"t": WebhookTarget(url=url, format=fmt, chat_id="-100")})
    ACTIONS["notify_webhook"].run(ctx, target="t", text=text)
    got = json.loads(rec.got[0][1])
    shown = got["text"]
    for mention in ("@everyone", "@here"):
        assert mention not in shown and mention.replace("@", "@\u2060") in shown
    assert "ops@city.example" in shown  # an e-mail address is not a mention
    if fmt == "slack":
        assert got["mrkdwn"] is False
        assert "<" not in shown and ">" not in shown and "&lt;!channel&gt;" in shown and "&amp; co" in shown
    elif fmt == "teams":
        assert "<" not in shown and "&lt;at&gt;admin&lt;/at&gt;" in shown
        assert r"\[login\]\(http://evil.example/p\)" in shown and r"\*urgent\*" in shown and r"\_x\_" in shown
        assert "@everyone" not in got["summary"]
    else:
        assert "parse_mode" not in got and got["disable_web_page_preview"] is True
        assert "<!channel>" in shown  # plain text: Telegram shows it as typed


def test_generic_webhook_text_is_data_left_as_is(http_server, tmp_path: Path):
    url, rec = http_server
    ACTIONS["notify_webhook"].run(_ctx(tmp_path, webhooks={"t": WebhookTarget(url=url)}), target="t", text=ATTACK)
    assert json.loads(rec.got[0][1])["text"] == ATTACK
