"""A failed step's error reads in the reader's language (issue 16: a failed e-mail step
showed "SMTP ... failed: ...; check playbooks.smtp" in English on a Vietnamese page). The
action raises a catalog message; the runner keeps it as the step's error, the run store
keeps its key beside the English text, and it comes back from the store as a message."""
from __future__ import annotations

import asyncio
from pathlib import Path

from citysoc.wiring import open_soc
from core.messages import render
from core.playbooks import PlaybookSettings, SmtpSettings
from core.settings import Settings
from pbhelpers import make_runner
from smtp_sink import _free_port

PLAYBOOK = """
name: mail-dead
title: Mail a server nobody runs
description: The only step fails for real (nothing listens on the port).
trigger: {manual: true}
steps:
  - name: notify
    action: notify_email
    with: {subject: "test", body: "hello", to: [duty@hcmc.example]}
    timeout: 5
    on_error: {then: continue}
"""


def test_failed_email_step_error_is_a_catalog_message_kept_by_the_store(tmp_path: Path) -> None:
    folder = tmp_path / "pb"
    folder.mkdir()
    (folder / "mail-dead.yml").write_text(PLAYBOOK, encoding="utf-8")
    soc = open_soc(Settings(data=tmp_path / "data"))
    port = _free_port()
    runner = make_runner(soc, tmp_path, settings=PlaybookSettings(smtp=SmtpSettings(port=port)), folders=[folder])

    async def main():
        run = await runner.start("mail-dead", actor="user:lan")
        await runner.drain()
        return run

    run = asyncio.run(main())
    stored = runner.get_run(run.id)  # read back from playbooks.db
    assert stored.status == "completed_with_failures"
    [step] = stored.steps
    assert step.status == "failed"
    assert step.error.startswith("SMTP ") and f":{port} failed: " in step.error
    assert step.error.endswith("; check playbooks.smtp")  # the English text as before
    assert step.error_msg is not None and step.error_msg["key"] == "msg.email.failed"
    vi = render(step.error_msg, "vi")
    assert vi.startswith("gửi e-mail qua máy chủ SMTP ") and "thất bại" in vi and "failed" not in vi
    soc.close()
