"""Scan limits: oversize files, zip bombs, nesting depth, timeouts, path traversal names,
and the file-event detector's prefix allow-list and sha256 de-duplication."""
from __future__ import annotations

import gzip
import io
import os
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
import yara

from detections.yara import FileEventScanner, ScanLimits, YaraScanner, compile_rules

FIX = Path(__file__).parent / "fixtures_yara"
SHELL = (FIX / "upload_webshell.php").read_bytes()


@pytest.fixture(scope="module")
def rules() -> yara.Rules:
    return compile_rules().rules


def _zip(members: dict[str, bytes], compress: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compress) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_oversize_file_is_skipped_with_a_reason(tmp_path: Path, rules):
    big = tmp_path / "big.bin"
    big.write_bytes(SHELL + b"\x00" * 5000)
    [res] = YaraScanner(rules, ScanLimits(max_file_size=4096)).scan_file(big)
    assert res.matches == [] and res.size == len(SHELL) + 5000
    assert res.skipped.startswith("larger than max size")


def test_zip_bomb_is_stopped_at_the_extraction_byte_limit(rules):
    # 20 members of 8 MiB of zeros each: 160 MiB inflated from ~160 KB.
    zeros = b"\x00" * (8 * 1024 * 1024)
    bomb = _zip({f"part{i}.bin": zeros for i in range(20)})
    del zeros
    assert len(bomb) < 512 * 1024
    limits = ScanLimits(max_file_size=16 * 1024 * 1024, max_extracted=12 * 1024 * 1024)
    results = YaraScanner(rules, limits).scan_data(bomb, "bomb.zip")
    top = results[0]
    assert any("extraction limit reached" in n for n in top.notes)
    scanned = [r for r in results[1:] if r.skipped is None]
    stopped = [r for r in results[1:] if r.skipped and "extraction limit" in r.skipped]
    assert len(scanned) == 1 and len(stopped) == 1  # 8 MiB fits, the second one crosses 12 MiB
    assert len(results) == 3  # the rest were never opened


def test_archive_members_are_held_one_at_a_time_not_copied(rules):
    """Issue 18 bad-input bench: a zip of members of zeros, each under the file-size limit,
    held three members' worth at once (the previous member, the chunk list and its join)."""
    import tracemalloc

    member = 12 * 1024 * 1024
    data = _zip({f"disk{i}.img": b"\x00" * member for i in range(5)})
    scanner = YaraScanner(rules, ScanLimits(max_file_size=16 * 1024 * 1024, max_extracted=256 * 1024 * 1024))
    tracemalloc.start()
    try:
        results = scanner.scan_data(data, "backup.zip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [r.size for r in results[1:]] == [member] * 5
    assert peak < 1.5 * member, f"scanning held {peak / member:.1f} members at once"


def test_lying_member_size_is_still_bounded(rules):
    # The member says it is small in the central directory; the bounded read still stops.
    data = _zip({"a.bin": b"A" * (3 * 1024 * 1024)})
    results = YaraScanner(rules, ScanLimits(max_file_size=1024 * 1024)).scan_data(data, "x.zip")
    assert results[1].skipped.startswith("member larger than max size")


def test_nested_archives_are_scanned_up_to_max_depth(rules):
    inner = _zip({"deep/shell.php": SHELL})
    middle = _zip({"inner.zip": inner})
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as tf:
        info = tarfile.TarInfo("middle.zip")
        info.size = len(middle)
        tf.addfile(info, io.BytesIO(middle))
    outer = tgz.getvalue()
    deep = YaraScanner(rules, ScanLimits(max_depth=3)).scan_data(outer, "drop.tgz")
    paths = [r.path for r in deep]
    assert paths == ["drop.tgz", "drop.tgz!middle.zip", "drop.tgz!middle.zip!inner.zip",
                     "drop.tgz!middle.zip!inner.zip!deep/shell.php"]
    assert [m.rule for m in deep[-1].matches] == ["citysoc_webshell_php_eval_request"]

    shallow = YaraScanner(rules, ScanLimits(max_depth=2)).scan_data(outer, "drop.tgz")
    assert [r.path for r in shallow] == paths[:3]
    assert any("deeper than max depth 2" in n for n in shallow[-1].notes)


def test_single_gzip_member_and_damaged_archive(rules):
    res = YaraScanner(rules).scan_data(gzip.compress(SHELL), "upload.php.gz")
    assert res[1].path == "upload.php.gz!upload.php" and res[1].matches
    broken = _zip({"a.php": SHELL})[:-30]
    res = YaraScanner(rules).scan_data(broken, "broken.zip")
    assert any("damaged zip archive" in n for n in res[0].notes)


def test_path_traversal_member_names_are_flagged_and_still_scanned(rules, tmp_path: Path):
    data = _zip({"../../var/www/html/x.php": SHELL, "/etc/cron.d/job": b"hello"})
    res = YaraScanner(rules).scan_data(data, "evil.zip")
    by_path = {r.path: r for r in res}
    traversal = by_path["evil.zip!../../var/www/html/x.php"]
    assert traversal.matches and any("path traversal" in n for n in traversal.notes)
    assert any("path traversal" in n for n in by_path["evil.zip!/etc/cron.d/job"].notes)
    assert not (tmp_path.parent / "var").exists()


def test_timeout_is_reported_as_a_skip_reason(tmp_path: Path):
    slow = tmp_path / "slow.yar"
    slow.write_text("rule quadratic { condition: for any i in (0..filesize) : "
                    "( for any j in (0..filesize) : ( uint8(i) == uint8(j) + 300 ) ) }\n")
    sc = YaraScanner(compile_rules([slow], include_pack=False).rules, ScanLimits(timeout=1))
    [res] = sc.scan_data(b"A" * 50_000, "blob")
    assert res.skipped.startswith("timeout") and res.matches == []


def test_scan_paths_walks_folders_and_reports_missing_paths(rules, tmp_path: Path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "s.php").write_bytes(SHELL)
    (tmp_path / "a.txt").write_text("nothing")
    errors: list[str] = []
    for workers in (1, 2):
        errors.clear()
        res = list(YaraScanner(rules).scan_paths([tmp_path, tmp_path / "missing"], workers=workers, errors=errors))
        assert [Path(r.path).name for r in res] == ["a.txt", "s.php"]
        assert res[1].matches and not res[0].matches
        assert errors == [f"{tmp_path / 'missing'}: no such file or folder"]


def _file_event(path: Path | str) -> dict:
    return {"event": {"category": ["file"], "type": ["creation"]}, "file": {"path": str(path)}}


def test_file_event_scanner_scans_only_allowed_prefixes_and_dedupes(rules, tmp_path: Path):
    ingest = tmp_path / "ingest"
    ingest.mkdir()
    outside = tmp_path / "outside.php"
    outside.write_bytes(SHELL)
    (ingest / "a.php").write_bytes(SHELL)
    (ingest / "b.php").write_bytes(SHELL)
    det = FileEventScanner(YaraScanner(rules), [ingest])
    assert det.name == "yara-file"

    ev = _file_event(ingest / "a.php")
    [d] = det.process(ev)
    assert d.engine == "yara" and d.events == [ev] and d.extra["file.path"] == str(ingest / "a.php")
    assert det.process(ev) == []  # same content, same path: reported once
    [d2] = det.process(_file_event(ingest / "b.php"))  # same content elsewhere: no rescan
    assert d2.extra["file.path"] == str(ingest / "b.php")
    assert det.counters["scanned"] == 1 and det.counters["cache_hits"] == 1

    assert det.process(_file_event(outside)) == []
    assert det.process(_file_event(f"{ingest}/../outside.php")) == []
    os.symlink(outside, ingest / "link.php")
    assert det.process(_file_event(ingest / "link.php")) == []
    assert det.counters["refused"] == 3
    assert det.process({"event": {"category": "process"}, "file": {"path": str(ingest / "a.php")}}) == []
    with pytest.raises(ValueError, match="allowed path prefix"):
        FileEventScanner(YaraScanner(rules), [])


def test_started_file_scanner_never_holds_the_detection_thread(rules, tmp_path: Path):
    """Issue 18: a watched-folder scan ran on the detection thread, so one slow file (a
    bomb's 60 s deadline) stalled every rule. A FIFO stands in for a file that takes as long
    as we like to read: ``process`` must return at once, the worker scans it once we write,
    and files past the bounded queue are counted as dropped, not held."""
    import threading

    ingest = tmp_path / "ingest"
    ingest.mkdir()
    fifo = ingest / "upload.php"
    os.mkfifo(fifo)
    got: list = []
    arrived = threading.Event()

    def emit(dets) -> None:
        got.extend(dets)
        arrived.set()

    det = FileEventScanner(YaraScanner(rules), [ingest])
    det.start(emit, queue_size=2)
    ev = _file_event(fifo)
    returned: list = []
    caller = threading.Thread(target=lambda: returned.append(det.process(ev)), daemon=True)
    caller.start()
    caller.join(2)
    try:
        assert not caller.is_alive(), "process() waited for the file: the detection thread is held"
        assert returned == [[]]
        deadline = time.monotonic() + 5
        while det.pending and time.monotonic() < deadline:  # the worker took it and waits on the FIFO
            time.sleep(0.01)
        for i in range(5):
            assert det.process(_file_event(ingest / f"more{i}.php")) == []
        assert det.counters["queued"] == 3 and det.counters["dropped"] == 3 and det.pending == 2
        m = det.metrics()
        assert m["received"] == 6 and m["dropped"] == 3 and m["queue_depth"] == 2
    finally:
        with open(fifo, "wb") as w:  # unblocks the worker (and the old inline scan)
            w.write(SHELL)
    assert arrived.wait(10)
    assert got and got[0].engine == "yara" and got[0].extra["file.path"] == str(fifo) and got[0].events == [ev]
    det.stop()
    assert det.counters["scanned"] == 1


def test_damaged_zip_member_is_skipped_and_the_others_scanned(rules):
    data = bytearray(_zip({"a.txt": b"hello " * 2000, "b.php": SHELL}))
    # corrupt a.txt's deflate stream (it starts right after its 30-byte header + name)
    for i in range(30 + len("a.txt") + 2, 30 + len("a.txt") + 12):
        data[i] ^= 0xFF
    res = YaraScanner(rules).scan_data(bytes(data), "partly.zip")
    by_path = {r.path: r for r in res}
    assert by_path["partly.zip!a.txt"].skipped.startswith("damaged member")
    assert by_path["partly.zip!b.php"].matches


def test_plain_tar_traversal_names_and_member_limit(rules):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in [("../../etc/rc.local", SHELL), ("ok.txt", b"fine"), ("more.txt", b"x")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    res = YaraScanner(rules).scan_data(buf.getvalue(), "drop.tar")
    assert [r.path for r in res] == ["drop.tar", "drop.tar!../../etc/rc.local", "drop.tar!ok.txt", "drop.tar!more.txt"]
    assert res[1].matches and any("path traversal" in n for n in res[1].notes)
    limited = YaraScanner(rules, ScanLimits(max_members=2)).scan_data(buf.getvalue(), "drop.tar")
    assert len(limited) == 3 and any("member limit reached" in n for n in limited[0].notes)


def test_externals_use_the_objects_own_name_even_with_bangs(tmp_path: Path):
    rule = tmp_path / "ext.yar"
    rule.write_text('rule php_by_ext { condition: extension == ".php" and filename == "x!y.php" }\n')
    sc = YaraScanner(compile_rules([rule], include_pack=False).rules)
    f = tmp_path / "x!y.php"
    f.write_text("hi")
    assert [m.rule for m in sc.scan_file(f)[0].matches] == ["php_by_ext"]
    res = sc.scan_data(_zip({"dir/x!y.php": b"hi"}), "up!load.zip")
    assert res[1].path == "up!load.zip!dir/x!y.php" and [m.rule for m in res[1].matches] == ["php_by_ext"]


# -- issue 18: bombs that are slow rather than big, and scans that saw only part ----------

def _bz2_tar_bomb(member_size: int) -> bytes:
    """A .tar.bz2 of a few hundred bytes: one member of ``member_size`` zero bytes."""
    import bz2

    c = bz2.BZ2Compressor(9)
    info = tarfile.TarInfo("firmware.bin")
    info.size = member_size
    out = [c.compress(info.tobuf(format=tarfile.USTAR_FORMAT))]
    zeros = b"\x00" * (8 * 1024 * 1024)
    for _ in range(member_size // len(zeros)):
        out.append(c.compress(zeros))
    out.append(c.flush())
    return b"".join(out)


def test_tiny_bz2_tar_bomb_is_bounded_by_the_budget_and_marked_incomplete(rules):
    """tarfile's own bz2 stream copied its buffer on every 10 KB read: 100 s for 146 bytes.
    Our bounded reader charges the decompressed bytes to the budget and stops there."""
    bomb = _bz2_tar_bomb(128 * 1024 * 1024)
    assert len(bomb) < 1024
    limits = ScanLimits(max_file_size=1024 * 1024, max_extracted=16 * 1024 * 1024)
    results = YaraScanner(rules, limits).scan_data(bomb, "update.tar.bz2")
    top = results[0]
    assert top.incomplete, "a member was not scanned: the scan must say incomplete"
    assert any("firmware.bin" in r for r in top.incomplete)


def test_deadline_stops_a_scan_and_marks_it_incomplete(rules):
    bomb = _bz2_tar_bomb(64 * 1024 * 1024)
    limits = ScanLimits(max_file_size=128 * 1024 * 1024, max_extracted=1024 * 1024 * 1024, deadline=0.001)
    top = YaraScanner(rules, limits).scan_data(bomb, "slow.tar.bz2")[0]
    assert any("deadline" in r for r in top.incomplete), top.incomplete


def test_webshell_four_zips_deep_is_incomplete_not_clean(rules, tmp_path: Path):
    from core.protocols import IncompleteScan
    from detections.yara import YaraAttachmentScanner

    inner = _zip({"shell.php": SHELL})
    for i in range(4):
        inner = _zip({f"layer{i}.zip": inner})
    path = tmp_path / "evidence.zip"
    path.write_bytes(inner)
    scanner = YaraScanner(rules, ScanLimits(max_depth=3))
    top = scanner.scan_file(path)[0]
    assert top.incomplete and any("max depth" in r for r in top.incomplete)
    with pytest.raises(IncompleteScan) as exc:
        YaraAttachmentScanner(scanner).scan_file(str(path))
    assert exc.value.findings == [] and exc.value.reasons


def test_encrypted_member_makes_the_scan_incomplete(rules):
    data = bytearray(_zip({"secret.php": SHELL}))
    # set the "encrypted" flag bit in the local header and the central directory entry
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        i = data.find(sig)
        off = i + (6 if sig == b"PK\x03\x04" else 8)
        data[off] |= 0x01
    top = YaraScanner(rules).scan_data(bytes(data), "locked.zip")[0]
    assert any("encrypted" in r for r in top.incomplete), top.incomplete


def test_complete_scan_has_no_incomplete_reasons(rules):
    top = YaraScanner(rules).scan_data(_zip({"a.txt": b"hello", "b.php": SHELL}), "ok.zip")[0]
    assert top.incomplete == []
