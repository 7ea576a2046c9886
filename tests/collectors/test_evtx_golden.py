"""Golden tests for collectors.evtx: real EVTX records in, exact ECS documents out.

The records come from the public EVTX-ATTACK-SAMPLES corpus in ``../shared/corpora``;
each golden file names the corpus file and record id it was made from. Regenerate after a
deliberate mapping change with ``CITYSOC_REGEN_GOLDEN=1`` and review the diff.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from collectors.evtx import EvtxError, EvtxReader, channel_dataset, record_to_ecs
from citysoc.testing import corpora_dir

CORPUS = corpora_dir() / "evtx"
GOLDEN = Path(__file__).parent / "golden" / "evtx"

CASES = {
    "sysmon_1_process_create": ("AutomatedTestingTools/Malware/DE_timestomp_and_dll_sideloading_and_RunPersist.evtx", 6577),
    "sysmon_3_network": ("AutomatedTestingTools/PanacheSysmon_vs_AtomicRedTeam01.evtx", 3757),
    "sysmon_13_registry_set": ("AutomatedTestingTools/Malware/DE_timestomp_and_dll_sideloading_and_RunPersist.evtx", 6593),
    "security_4624_logon": ("Command and Control/DE_RDP_Tunnel_5156.evtx", 227701),
    "security_4688_process": ("Command and Control/DE_RDP_Tunnel_5156.evtx", 227695),
    "powershell_4104_scriptblock": ("Credential Access/Powershell_4104_MiniDumpWriteDump_Lsass.evtx", 971),
    "application_325_unnamed_data": ("Credential Access/dc_applog_ntdsutil_dfir_325_326_327.evtx", 1970),
    "system_104_userdata": ("Defense Evasion/DE_104_system_log_cleared.evtx", 27736),
    "system_7045_service": ("Lateral Movement/LM_Remote_Service02_7045.evtx", 4480),
}

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"EVTX corpus not found at {CORPUS}")


def _record(rel: str, record_id: int) -> dict:
    for ev in EvtxReader(CORPUS / rel):
        if ev["winlog"]["record_id"] == record_id:
            ev["log"]["file"]["path"] = rel  # corpus-relative, so goldens do not depend on the checkout
            return ev
    raise AssertionError(f"record {record_id} not found in {rel}")


@needs_corpus
@pytest.mark.parametrize("name", sorted(CASES))
def test_evtx_record_matches_golden(name: str) -> None:
    rel, rid = CASES[name]
    got = _record(rel, rid)
    path = GOLDEN / f"{name}.json"
    if os.environ.get("CITYSOC_REGEN_GOLDEN") == "1":
        path.write_text(json.dumps(got, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert got == expected


@needs_corpus
def test_evtx_whole_corpus_parses_without_failures() -> None:
    total = 0
    for f in sorted(CORPUS.rglob("*.evtx")):
        reader = EvtxReader(f)
        n = sum(1 for _ in reader)
        assert reader.report.failed == 0, reader.report.as_dict()
        assert reader.report.events == reader.report.records == n
        total += n
    assert total == 4072  # the corpus README's record count


def test_evtx_not_an_evtx_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.evtx"
    bad.write_bytes(b"hello, this is text\n" * 10)
    with pytest.raises(EvtxError, match="not an EVTX file"):
        list(EvtxReader(bad))
    with pytest.raises(EvtxError, match="no such file"):
        list(EvtxReader(tmp_path / "missing.evtx"))


@needs_corpus
def test_evtx_corrupt_chunk_is_reported_not_fatal(tmp_path: Path) -> None:
    src = CORPUS / "UACME_59_Sysmon.evtx"
    data = bytearray(src.read_bytes())
    # Wreck the body of the first chunk (chunk header at 4096; records start at 4096+512).
    for off in range(4096 + 600, 4096 + 9000):
        data[off] = 0xFF
    broken = tmp_path / "broken.evtx"
    broken.write_bytes(bytes(data))
    reader = EvtxReader(broken)
    events = list(reader)
    good = sum(1 for _ in EvtxReader(src))
    assert len(events) < good
    assert reader.report.failed >= 1
    assert all(reason for _, reason in reader.report.failures)


def test_evtx_record_without_system_is_rejected_with_reason() -> None:
    with pytest.raises(ValueError, match="no Event/System"):
        record_to_ecs({"Event": {"EventData": {}}})
    with pytest.raises(ValueError, match="TimeCreated"):
        record_to_ecs({"Event": {"System": {"EventID": 4624}}})


def test_evtx_channel_datasets() -> None:
    assert channel_dataset("Microsoft-Windows-Sysmon/Operational") == ("sysmon", "windows.sysmon_operational")
    assert channel_dataset("Security") == ("windows", "windows.security")
    assert channel_dataset("Microsoft-Windows-Bits-Client/Operational") == (
        "windows",
        "windows.microsoft_windows_bits_client_operational",
    )


def test_evtx_keep_original_is_opt_in() -> None:
    rec = {
        "Event": {
            "System": {
                "Provider": {"#attributes": {"Name": "Microsoft-Windows-Security-Auditing"}},
                "EventID": 4625,
                "TimeCreated": {"#attributes": {"SystemTime": "2024-01-02T03:04:05.123456Z"}},
                "EventRecordID": 7,
                "Channel": "Security",
                "Computer": "ws1",
            },
            "EventData": {"TargetUserName": "bob", "IpAddress": "10.1.2.3", "IpPort": "5050", "LogonType": 3},
        }
    }
    ev = record_to_ecs(rec)
    assert "original" not in ev["event"]
    assert ev["@timestamp"] == "2024-01-02T03:04:05.123Z"
    assert ev["winlog"]["event_data"]["LogonType"] == "3"  # event data always strings
    assert ev["source"] == {"ip": "10.1.2.3", "port": 5050}
    assert ev["event"]["outcome"] == "failure" and ev["user"]["name"] == "bob"
    ev2 = record_to_ecs(rec, original='{"x":1}')
    assert ev2["event"]["original"] == '{"x":1}'
