"""Runner and action texts are messages (catalog key + parameters): the English text is
what CLI, logs and audit show, the console renders the same key in Vietnamese, and the
key survives the run store (a fresh process reading the run still has it)."""
from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import pytest

from core.messages import CATALOG_DIR, Message, from_json, render
from playbooks.actions.base import ActionContext
from playbooks.actions.nft import BlockIp, IsolateHost
from core.playbooks import PlaybookSettings, Run, StepState
from storage.playbook_runs import SQLiteRunStore

_PH = re.compile(r"\{([a-z_0-9]+)\}")


def _cat(lang: str) -> dict[str, str]:
    return json.loads((CATALOG_DIR / f"{lang}.json").read_text(encoding="utf-8"))


def test_every_message_key_has_the_same_placeholders_in_both_languages() -> None:
    en, vi = _cat("en"), _cat("vi")
    msg_keys = [k for k in en if k.startswith("msg.")]
    assert len(msg_keys) >= 35
    bad = [k for k in msg_keys if sorted(_PH.findall(en[k])) != sorted(_PH.findall(vi[k]))]
    assert bad == []
    # No English sentence copied into the Vietnamese catalog for a runner text.
    assert [k for k in msg_keys if en[k] == vi[k]] == []


def test_message_is_its_english_text_and_renders_vietnamese() -> None:
    m = Message("msg.nft.would_add_block", ip="10.20.3.250", table="citysoc", set="isolated4",
                ttl=Message("msg.nft.permanent"), via="")
    assert m == "would add 10.20.3.250 to nftables set inet citysoc isolated4 permanently: its traffic through and " \
                "to the gateway is dropped"
    vi = m.in_lang("vi")
    assert vi.startswith("sẽ thêm 10.20.3.250 vào tập nftables inet citysoc isolated4 vĩnh viễn")
    assert "would" not in vi and "permanently" not in vi
    assert pickle.loads(pickle.dumps(m)).to_json() == m.to_json()
    with pytest.raises(KeyError):
        Message("msg.no_such_key")
    # A stored message from a newer catalog (unknown key) falls back to its English text.
    assert from_json("plain text", {"key": "msg.from.the.future", "params": {}}) == "plain text"
    assert render({"key": "msg.from.the.future"}, "vi", "plain text") == "plain text"


def test_dry_run_descriptions_are_messages(tmp_path: Path) -> None:
    settings = PlaybookSettings.model_validate({"nft": {"allow_block": ["10.0.0.0/8"], "table": "citysoc"}})
    ctx = ActionContext(settings=settings, data_dir=tmp_path)
    d = BlockIp().describe(ctx, ip="10.20.3.250", ttl_s=3600)
    assert isinstance(d, Message) and d.key == "msg.nft.would_add_block"
    assert "3600 s timeout" in d and "3600 giây" in d.in_lang("vi")
    iso = IsolateHost().describe(ctx, ip="10.20.3.250")
    assert "chỉ còn liên lạc được với" in iso.in_lang("vi")


def test_messages_survive_the_run_store(tmp_path: Path) -> None:
    store = SQLiteRunStore(tmp_path / "playbooks.db")
    run, _ = store.create_run(Run(id=0, playbook="p", status="queued", trigger="manual", actor="ana"))
    wait = Message("msg.run.waits", step="isolate", action="isolate_host", role=Message("role.responder"))
    st = StepState(index=0, name="isolate", action="isolate_host", status="would_run",
                   would=Message("msg.step.after_approval", what=Message("msg.nft.would_delete", ip="10.1.1.1",
                                                                        table="citysoc", set="isolated4"),
                                 role=Message("role.responder")))
    store.save_step(run.id, st)
    assert store.set_status(run.id, "queued", "running", reason="running")
    assert store.set_status(run.id, "running", "awaiting_approval", reason=wait)
    store.close()
    again = SQLiteRunStore(tmp_path / "playbooks.db").get_run(run.id)
    assert again.reason == "step 'isolate' (isolate_host) waits for approval by role 'responder'"
    assert again.reason_msg == wait.to_json()
    assert render(again.reason_msg, "vi") == "bước 'isolate' (isolate_host) đang chờ vai trò 'chuyên viên ứng cứu' phê duyệt"
    step = again.steps[0]
    assert step.would_msg is not None and step.would_msg["key"] == "msg.step.after_approval"
    assert "sau khi vai trò chuyên viên ứng cứu phê duyệt" in render(step.would_msg, "vi")
