"""The YARA scanner: files, folders and byte strings, with limits, archives member by member.

Example::

    >>> scanner = YaraScanner(compile_rules().rules, ScanLimits(max_file_size=32 * MiB))
    >>> for result in scanner.scan_paths([Path("/srv/warehouse/ingest")]):
    ...     print(result.path, [m.rule for m in result.matches], result.skipped)
"""
from __future__ import annotations

import hashlib
import time
import os
import stat
import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import yara

from core.protocols import Detection
from detections.yara.archives import Budget, archive_kind, iter_members, unsafe_name
from detections.yara.limits import ScanLimits
from detections.yara.results import ScanResult, convert_matches, to_detections

__all__ = ["YaraScanner", "iter_files"]


def iter_files(paths: Iterable[Path], errors: list[str] | None = None) -> Iterator[Path]:
    """Files named, and files below folders named (sorted; symlinked folders not entered).

    A missing path, or a folder that cannot be listed, goes to ``errors`` when given;
    otherwise a missing path raises FileNotFoundError.
    """
    def walk_error(exc: OSError) -> None:
        if errors is not None:
            errors.append(f"{exc.filename}: {exc.strerror}")

    for p in paths:
        p = Path(p)
        if p.is_dir():
            for root, dirs, files in os.walk(p, onerror=walk_error):
                dirs.sort()
                for name in sorted(files):
                    yield Path(root) / name
        elif p.exists() or p.is_symlink():
            yield p
        elif errors is not None:
            errors.append(f"{p}: no such file or folder")
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")


def _extension(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "." + base.rsplit(".", 1)[1].lower() if "." in base.strip(".") else ""


_INCOMPLETE_NOTES = ("not scanned", "damaged", "limit reached", "deadline")


def _incomplete_reasons(top: ScanResult, children: list[ScanResult]) -> list[str]:
    """Why a scan did not see everything: a member skipped, too deep, encrypted, over budget.

    A scan with any reason is ``incomplete``, never ``clean``: a webshell four zips deep
    was not looked at, so nothing can be said of it.
    """
    reasons: list[str] = []
    for r in (top, *children):
        if r.skipped:
            reasons.append(f"{r.path}: {r.skipped}")
        reasons.extend(f"{r.path}: {n}" for n in r.notes if any(k in n for k in _INCOMPLETE_NOTES))
    return reasons[:50]


class YaraScanner:
    """Scans with compiled rules under :class:`ScanLimits`.

    Thread-safe: ``yara.Rules.match`` releases the GIL, so ``scan_paths(workers=N)``
    scans N files at once.
    """

    def __init__(self, rules: yara.Rules, limits: ScanLimits | None = None):
        self.rules = rules
        self.limits = limits or ScanLimits()

    # -- one object ---------------------------------------------------------------------
    def _match(self, data: bytes, path: str, name: str, result: ScanResult, on_disk: bool = False,
               budget: Budget | None = None) -> None:
        """``path`` is what we show (``a.zip!x.php``); ``name`` is the object's own name."""
        lim = self.limits
        timeout = lim.timeout
        if budget is not None:
            left = budget.deadline - time.monotonic()
            if left <= 0:
                budget.over_time()
                result.skipped = f"scan deadline of {lim.deadline}s reached: not matched"
                return
            timeout = max(1, min(timeout, int(left) + 1))
        externals = {"filename": name.replace("\\", "/").rsplit("/", 1)[-1], "filepath": name,
                     "extension": _extension(name)}
        try:
            if on_disk:
                # yara maps the file itself, as a plain yara-python loop does; the bytes we
                # read serve the sha256 and archive sniffing.
                matches = self.rules.match(path, timeout=timeout, externals=externals)
            else:
                matches = self.rules.match(data=data, timeout=timeout, externals=externals)
        except yara.TimeoutError:
            result.skipped = f"timeout: yara gave up after {timeout}s (matches unknown)"
            return
        except yara.Error as exc:
            result.skipped = f"yara error: {exc}"
            return
        result.matches = convert_matches(matches, max_strings=lim.max_strings,
                                         max_instances=lim.max_instances, snippet_bytes=lim.snippet_bytes)

    def _scan_data(self, data: bytes, path: str, name: str, depth: int, budget: Budget,
                   on_disk: bool = False) -> Iterator[ScanResult]:
        result = ScanResult(path, hashlib.sha256(data).hexdigest(), len(data), depth=depth)
        self._match(data, path, name, result, on_disk, budget)
        kind = archive_kind(data[:512])
        children: list[ScanResult] = []
        if kind is not None:
            if depth >= self.limits.max_depth:
                result.notes.append(f"{kind} archive nested deeper than max depth {self.limits.max_depth}: members not scanned")
            else:
                try:
                    for member in iter_members(data, kind, path, self.limits.max_file_size, budget):
                        mpath = f"{path}!{member.name}"
                        if member.data is None:
                            child = ScanResult(mpath, None, member.declared_size, skipped=member.skipped, depth=depth + 1)
                            if unsafe_name(member.name):
                                child.notes.append("unsafe member name (path traversal)")
                            children.append(child)
                            continue
                        sub = list(self._scan_data(member.data, mpath, member.name, depth + 1, budget))
                        member.data = None  # scanned: free it before the next member is read
                        if unsafe_name(member.name):
                            sub[0].notes.append("unsafe member name (path traversal): content scanned, never extracted")
                        children.extend(sub)
                except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, lzma.LZMAError, zlib.error,
                        NotImplementedError, RuntimeError, ValueError) as exc:
                    result.notes.append(f"damaged {kind} archive: {exc}; members after this point not scanned")
                if budget.exhausted and depth == 0:
                    result.notes.append(
                        f"{budget.exhausted} (max {self.limits.max_extracted} bytes, {self.limits.max_members} members,"
                        f" {self.limits.deadline}s)")
        if depth == 0:
            result.incomplete = _incomplete_reasons(result, children)
        yield result
        yield from children

    def _budget(self) -> Budget:
        return Budget(self.limits.max_extracted, self.limits.max_members,
                      deadline=time.monotonic() + self.limits.deadline)

    def scan_data(self, data: bytes, name: str) -> list[ScanResult]:
        """Scan bytes (an upload, an attachment); the first result is ``data`` itself."""
        if len(data) > self.limits.max_file_size:
            return [ScanResult(name, hashlib.sha256(data).hexdigest(), len(data),
                               skipped=f"larger than max size ({len(data)} > {self.limits.max_file_size} bytes)")]
        return list(self._scan_data(data, name, name, 0, self._budget()))

    def scan_file(self, path: Path) -> list[ScanResult]:
        """Scan one file; the first result is the file, then its archive members if any."""
        spath = str(path)
        try:
            st = os.stat(path)
        except OSError as exc:
            return [ScanResult(spath, None, None, skipped=f"cannot stat: {exc.strerror}")]
        if not stat.S_ISREG(st.st_mode):
            return [ScanResult(spath, None, None, skipped="not a regular file")]
        if st.st_size > self.limits.max_file_size:
            return [ScanResult(spath, None, st.st_size,
                               skipped=f"larger than max size ({st.st_size} > {self.limits.max_file_size} bytes)")]
        limit = self.limits.max_file_size
        try:
            with open(path, "rb") as f:
                head = f.read(512)
                if archive_kind(head) is None:
                    # Not an archive: hash it in chunks and let yara map the file; the
                    # content never has to sit in our memory.
                    h = hashlib.sha256(head)
                    size = len(head)
                    while size <= limit:
                        chunk = f.read(1024 * 1024)
                        if not chunk:
                            break
                        h.update(chunk)
                        size += len(chunk)
                    data = None
                else:
                    data = head + f.read(limit + 1 - len(head))
                    size = len(data)
        except OSError as exc:
            return [ScanResult(spath, None, st.st_size, skipped=f"cannot read: {exc.strerror}")]
        if size > limit:  # grew since stat
            return [ScanResult(spath, None, size, skipped=f"larger than max size (> {limit} bytes)")]
        if data is not None:
            return list(self._scan_data(data, spath, spath, 0, self._budget(), on_disk=True))
        result = ScanResult(spath, h.hexdigest(), size)
        self._match(b"", spath, spath, result, on_disk=True)
        if result.skipped:
            result.incomplete = [result.skipped]
        return [result]

    # -- many ---------------------------------------------------------------------------
    def scan_paths(self, paths: Iterable[Path], *, workers: int = 1, errors: list[str] | None = None,
                   on_file: Callable[[Path], None] | None = None) -> Iterator[ScanResult]:
        """Scan files and folders; results come in file order (members after their file).

        Missing paths go to ``errors`` when given (otherwise raise FileNotFoundError).
        ``on_file`` is called after each top-level file (for progress bars).
        """
        files = iter_files(paths, errors)
        if workers <= 1:
            for f in files:
                yield from self.scan_file(f)
                if on_file:
                    on_file(f)
            return
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="yara-scan") as pool:
            # A bounded window of files in flight keeps memory flat and results in order.
            window: deque[tuple[Path, Future[list[ScanResult]]]] = deque()
            for f in files:
                window.append((f, pool.submit(self.scan_file, f)))
                if len(window) >= workers * 4:
                    p, fut = window.popleft()
                    yield from fut.result()
                    if on_file:
                        on_file(p)
            while window:
                p, fut = window.popleft()
                yield from fut.result()
                if on_file:
                    on_file(p)

    # -- detections ---------------------------------------------------------------------
    def scan_bytes(self, data: bytes, name: str) -> list[Detection]:
        """Attachment-scanner callable: detections for ``data`` and its archive members."""
        out: list[Detection] = []
        for r in self.scan_data(data, name):
            out.extend(to_detections(r))
        return out
