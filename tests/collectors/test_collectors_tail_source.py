"""File tail on real files: rotation by rename, truncation, restarts, checkpoints after emit."""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from collectors.sources.tail import FileTailSource
from core.protocols import RawRecord

pytestmark = pytest.mark.timeout(60)


class Collect:
    def __init__(self) -> None:
        self.records: list[RawRecord] = []
        self.gate: asyncio.Event | None = None
        self.fail_next = False

    async def __call__(self, batch):
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("pipeline closed")
        self.records.extend(batch)

    def lines(self) -> list[str]:
        return [r.data.decode() for r in self.records]

    async def wait_for(self, n: int, timeout: float = 10.0) -> None:
        async def _poll() -> None:
            while len(self.records) < n:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(_poll(), timeout)
        await asyncio.sleep(0.1)  # and nothing more than n arrives
        assert len(self.records) == n, self.lines()[n - 3:]


def _append(path: Path, lines: list[str], *, newline: bool = True) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + ("\n" if newline else ""))


async def _start(src, sink):
    task = asyncio.create_task(src.run(sink))
    await asyncio.wait_for(src.ready.wait(), 5)
    return task


async def _stop(task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _src(tmp: Path, pattern: str = "*.log", **kw) -> FileTailSource:
    kw.setdefault("poll_interval", 0.02)
    return FileTailSource([str(tmp / "logs" / pattern)], checkpoint=tmp / "data" / "tail.json", **kw)


@pytest.fixture()
def logs(tmp_path: Path) -> Path:
    d = tmp_path / "logs"
    d.mkdir()
    return d


def test_lines_meta_and_partial_lines(tmp_path: Path, logs: Path) -> None:
    async def main() -> None:
        log = logs / "app.log"
        _append(log, [f"line {i}" for i in range(100)])
        sink = Collect()
        src = _src(tmp_path, format="generic", dataset="test.tail")
        task = await _start(src, sink)
        await sink.wait_for(100)
        _append(log, ["half"], newline=False)
        await asyncio.sleep(0.2)
        assert len(sink.records) == 100  # an unfinished line waits
        _append(log, [" done", "", "next"])
        await sink.wait_for(102)  # the blank line is skipped
        assert sink.lines()[-2:] == ["half done", "next"]
        r = sink.records[1]
        assert r.meta["log.file.path"] == str(log) and r.meta["log.offset"] == len(b"line 0\n")
        assert r.format == "generic" and r.dataset == "test.tail" and r.source == "tail"
        c = src.counters()
        assert c["received"] == c["emitted"] == 102 and c["files"] == 1
        await _stop(task)

    asyncio.run(main())


def test_rotation_by_rename_reads_everything_once(tmp_path: Path, logs: Path) -> None:
    async def main() -> None:
        log = logs / "app.log"
        _append(log, [f"old {i}" for i in range(100)])
        sink = Collect()
        src = _src(tmp_path, pattern="app.log")
        task = await _start(src, sink)
        await sink.wait_for(100)
        os.rename(log, logs / "app.log.1")
        _append(logs / "app.log.1", [f"old late {i}" for i in range(10)])  # the writer still had it open
        _append(log, [f"new {i}" for i in range(50)])
        await sink.wait_for(160)
        got = sink.lines()
        assert sorted(got) == sorted([f"old {i}" for i in range(100)] + [f"old late {i}" for i in range(10)]
                                     + [f"new {i}" for i in range(50)])
        assert src.counters()["rotations"] == 1
        await asyncio.sleep(0.2)
        assert src.counters()["files"] == 1  # the rotated file was let go once read
        await _stop(task)

    asyncio.run(main())


def test_copytruncate(tmp_path: Path, logs: Path) -> None:
    async def main() -> None:
        log = logs / "app.log"
        _append(log, [f"before {i}" for i in range(20)])
        sink = Collect()
        src = _src(tmp_path)
        task = await _start(src, sink)
        await sink.wait_for(20)
        with open(log, "w"):
            pass
        await asyncio.sleep(0.1)
        _append(log, [f"after {i}" for i in range(5)])
        await sink.wait_for(25)
        assert sink.lines()[-5:] == [f"after {i}" for i in range(5)]
        assert src.counters()["truncations"] == 1
        await _stop(task)

    asyncio.run(main())


def test_restart_neither_rereads_nor_skips(tmp_path: Path, logs: Path) -> None:
    async def main() -> None:
        log = logs / "app.log"
        _append(log, [f"a {i}" for i in range(100)])
        _append(log, ["unfinished"], newline=False)
        sink = Collect()
        task = await _start(_src(tmp_path), sink)
        await sink.wait_for(100)
        await _stop(task)
        # While stopped: the unfinished line is finished, more lines come, then a rotation.
        _append(log, [" now finished", "b 0", "b 1"])
        os.rename(log, logs / "app.log.1")
        _append(log, ["c 0", "c 1", "c 2"])
        sink2 = Collect()
        src2 = _src(tmp_path)
        task2 = await _start(src2, sink2)
        await sink2.wait_for(6)
        assert sink2.lines() == ["unfinished now finished", "b 0", "b 1", "c 0", "c 1", "c 2"]
        await _stop(task2)
        # A third start with nothing new emits nothing.
        sink3 = Collect()
        task3 = await _start(_src(tmp_path), sink3)
        await asyncio.sleep(0.3)
        assert sink3.records == []
        await _stop(task3)

    asyncio.run(main())


def test_checkpoint_moves_only_after_emit_returns(tmp_path: Path, logs: Path) -> None:
    async def main() -> None:
        log = logs / "app.log"
        _append(log, [f"x {i}" for i in range(10)])
        ckpt = tmp_path / "data" / "tail.json"
        sink = Collect()
        sink.gate = asyncio.Event()
        task = await _start(_src(tmp_path), sink)
        await asyncio.sleep(0.2)
        offsets = [v["offset"] for v in json.loads(ckpt.read_text())["files"].values()] if ckpt.exists() else [0]
        assert offsets == [0]  # emit has not returned: nothing is acknowledged
        sink.gate.set()
        await sink.wait_for(10)
        assert [v["offset"] for v in json.loads(ckpt.read_text())["files"].values()] == [log.stat().st_size]
        await _stop(task)
        # A batch the pipeline refused is read again after a restart (at least once, never lost).
        _append(log, ["y 0", "y 1"])
        failing = Collect()
        failing.fail_next = True
        t2 = asyncio.create_task(_src(tmp_path).run(failing))
        await asyncio.gather(t2, return_exceptions=True)
        sink2 = Collect()
        t3 = await _start(_src(tmp_path), sink2)
        await sink2.wait_for(2)
        assert sink2.lines() == ["y 0", "y 1"]
        await _stop(t3)

    asyncio.run(main())


def test_oversize_line_is_cut_and_the_next_survives(tmp_path: Path, logs: Path) -> None:
    async def main() -> None:
        log = logs / "big.log"
        _append(log, ["first", "Z" * 50_000, "after"])
        sink = Collect()
        src = _src(tmp_path, max_line_size=1000, read_size=4096)
        task = await _start(src, sink)
        await sink.wait_for(3)
        assert [len(r.data) for r in sink.records] == [5, 1000, 5]
        assert sink.records[1].meta.get("truncated") is True and sink.lines()[2] == "after"
        assert src.counters()["truncated"] == 1
        await _stop(task)

    asyncio.run(main())


def test_globs_new_files_and_start_at_end(tmp_path: Path, logs: Path) -> None:
    async def main() -> None:
        _append(logs / "old.log", ["history"])
        sink = Collect()
        task = await _start(_src(tmp_path, start_at="end"), sink)
        await asyncio.sleep(0.1)
        _append(logs / "old.log", ["fresh"])
        _append(logs / "second.log", ["from a new file"])
        _append(logs / "ignored.txt", ["not matched"])
        await sink.wait_for(2)
        assert sorted(sink.lines()) == ["fresh", "from a new file"]
        await _stop(task)

    asyncio.run(main())


def test_corrupt_checkpoint_says_what_to_do(tmp_path: Path, logs: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tail.json").write_text("{not json")
    with pytest.raises(ValueError, match="move it away"):
        asyncio.run(_src(tmp_path).run(Collect()))
