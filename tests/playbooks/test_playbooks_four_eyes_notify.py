"""Responding with confidence, with real transports on loopback: a run whose step failed
under ``on_error: continue`` ends ``completed_with_failures`` (not ``succeeded``); four eyes
refuses the starter's own approval with a clear reason and lets a second person approve; a
run that starts waiting notifies the on-duty mailbox (a real SMTP server) and webhook (a
real HTTP server) and every run listener, and a dead mail server never fails the run."""
from __future__ import annotations

import asyncio
import json
import threading
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from citysoc.wiring import open_soc
from core.playbooks import FourEyesDenied, OnDutySettings, PlaybookSettings, SmtpSettings, WebhookTarget
from core.settings import Settings
from pbhelpers import audit_actions, make_runner
from smtp_sink import SmtpSink, _free_port

PLAYBOOK = """
name: duty-test
title: Tell a dead endpoint, then open a case after approval
description: The first step fails for real (nothing listens); the run must not end green.
trigger: {manual: true}
steps:
  - name: tell
    action: notify_webhook
    with: {target: dead, text: "hello"}
    timeout: 5
    on_error: {then: continue}
  - name: hold
    action: create_case
    with: {title: "held by four eyes", severity: low}
    approval: {role: responder}
"""


class _Hook(BaseHTTPRequestHandler):
    got: list[bytes] = []

    def do_POST(self) -> None:
        type(self).got.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hook():
    _Hook.got = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/duty", _Hook
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def sink():
    s = SmtpSink()
    yield s
    s.close()


def _runner(tmp_path: Path, ps: PlaybookSettings):
    folder = tmp_path / "pb"
    folder.mkdir()
    (folder / "duty-test.yml").write_text(PLAYBOOK, encoding="utf-8")
    soc = open_soc(Settings(data=tmp_path / "data"))
    runner = make_runner(soc, tmp_path, settings=ps, folders=[folder])
    events: list[tuple[int, str, str]] = []
    runner.run_listeners.append(lambda run, ev: events.append((run.id, ev, run.status)))
    return soc, runner, events


def _settings(sink_port: int, hook_url: str | None, **kw) -> PlaybookSettings:
    hooks = {"dead": WebhookTarget(url=f"http://127.0.0.1:{_free_port()}/nobody")}
    if hook_url:
        hooks["duty-chat"] = WebhookTarget(url=hook_url, format="slack")
    return PlaybookSettings(smtp=SmtpSettings(port=sink_port), webhooks=hooks, **kw)


def test_four_eyes_notify_and_completed_with_failures(tmp_path: Path, sink: SmtpSink, hook) -> None:
    url, rec = hook
    ps = _settings(sink.port, url, on_duty=OnDutySettings(email_to=["duty@hcmc.example"], webhooks=["duty-chat"],
                                                          console_url="https://soc.hcmc.example"))
    soc, runner, events = _runner(tmp_path, ps)

    async def main():
        run = await runner.start("duty-test", actor="user:lan")
        assert run.status == "awaiting_approval" and run.step("tell").status == "failed"
        await runner.drain()  # the notifications are sent in the background
        with pytest.raises(FourEyesDenied, match="four eyes: user:lan started run .* another responder"):
            await runner.approve(run.id, actor="user:lan", role="responder")
        assert (await asyncio.to_thread(runner.get_run, run.id)).status == "awaiting_approval"
        return run, await runner.approve(run.id, actor="user:minh", role="responder", comment="checked")

    run, done = asyncio.run(main())
    assert done.status == "completed_with_failures", done.reason
    assert "tell" in done.reason and done.step("hold").status == "succeeded"
    assert done.step("hold").approved_by == "user:minh"
    # the on-duty mailbox heard it once, through the real SMTP server, with a link
    msgs = sink.wait_for(1)
    assert len(msgs) == 1 and msgs[0][0] == ["duty@hcmc.example"]
    subject = str(make_header(decode_header(msgs[0][1]["Subject"])))
    body = msgs[0][1].get_payload(decode=True).decode()
    assert f"#{run.id}" in subject and "chờ phê duyệt" in subject and "hold" in subject
    assert "https://soc.hcmc.example/playbooks" in body and "user:lan" in body
    assert len(rec.got) == 1 and f"#{run.id}" in json.loads(rec.got[0])["text"]
    # listeners saw it park, then end
    kinds = [(e, s) for rid, e, s in events if rid == run.id]
    assert ("run.awaiting_approval", "awaiting_approval") in kinds
    assert kinds[-1] == ("run.updated", "completed_with_failures")
    acts = [a for a, _ in audit_actions(soc, run.id)]
    assert "playbook.approve.refused" in acts and acts.count("playbook.notify") == 2
    assert acts[-1] == "playbook.run.end"
    soc.close()


def test_dead_mail_server_never_fails_the_run_and_four_eyes_can_be_off(tmp_path: Path) -> None:
    ps = _settings(_free_port(), None, four_eyes=False, on_duty=OnDutySettings(email_to=["duty@hcmc.example"]))
    soc, runner, _events = _runner(tmp_path, ps)

    async def main():
        run = await runner.start("duty-test", actor="user:lan")
        await runner.drain()
        return run, await runner.approve(run.id, actor="user:lan", role="responder")  # one-person site

    run, done = asyncio.run(main())
    assert run.status == "awaiting_approval" and done.status == "completed_with_failures"
    failed = [d for a, d in audit_actions(soc, run.id) if a == "playbook.notify.failed"]
    assert len(failed) == 1 and failed[0]["channel"] == "email:duty@hcmc.example" and "SMTP" in failed[0]["error"]
    soc.close()


def test_all_steps_succeeding_is_still_succeeded(tmp_path: Path, sink: SmtpSink, hook) -> None:
    url, _rec = hook
    ps = _settings(sink.port, url)
    ps.webhooks["dead"] = WebhookTarget(url=url)  # now it answers
    soc, runner, _events = _runner(tmp_path, ps)

    async def main():
        run = await runner.start("duty-test", actor="user:lan")
        return await runner.approve(run.id, actor="user:minh", role="responder")

    assert asyncio.run(main()).status == "succeeded"
    assert sink.messages == []  # on_duty has no recipients by default: nobody is mailed
    soc.close()
