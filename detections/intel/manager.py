"""``FeedManager``: keeps feeds fresh and the matcher's index current.

Each feed is a file, a MISP feed folder, or an HTTP(S) URL. ``refresh()`` re-reads files
whose mtime or size changed (or changed too recently for mtimes to tell, as git does for
"racy" files), re-parses them only when their sha256 changed too, and asks servers
with ``If-None-Match`` / ``If-Modified-Since`` (a 304 costs nothing). A feed that fails to refresh (server
down, broken JSON) keeps its last good indicators and records the error; a new index
is built only when something changed and swapped in with one reference assignment,
so matchers never see a half-built index.

Example::

    >>> mgr = FeedManager([FeedSpec("cert", "https://intel.example/feed.json", refresh_s=900)])
    >>> mgr.refresh()
    >>> matcher = IntelMatcher(mgr.current)
    >>> mgr.start(interval_s=60)   # background refreshes; mgr.stop() to end
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from detections.intel.feedload import FeedError, FeedLoad
from detections.intel.feeds import FORMATS, feed_name, load_feed_bytes, load_feed_path, sniff_format
from detections.intel.index import IocIndex
from detections.intel.indicators import FeedProblem
from detections.intel.misp import load_misp_event_doc, misp_manifest_events

__all__ = ["FeedSpec", "FeedStatus", "FeedManager"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FeedSpec:
    name: str
    location: str
    """A file, a MISP feed folder, or an http(s) URL (of a document or of a MISP feed's manifest.json)."""
    format: str = "auto"
    refresh_s: float = 3600.0
    """Seconds between refreshes of this feed."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra HTTP headers (e.g. ``Authorization`` for a MISP instance)."""

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"feed {self.name}: unknown format {self.format!r} (use one of {', '.join(FORMATS)})")
        if not self.name or ":" in self.name:
            raise ValueError(f"feed name {self.name!r} must be non-empty and without ':'")

    @property
    def is_url(self) -> bool:
        return self.location.startswith(("http://", "https://"))

    @classmethod
    def parse(cls, text: str, **kw) -> FeedSpec:
        """``NAME=LOCATION`` or just ``LOCATION`` (name from the file or URL)."""
        m = re.match(r"^([A-Za-z0-9_.-]+)=(.+)$", text)
        if m:
            return cls(m.group(1), m.group(2), **kw)
        return cls(feed_name(text), text, **kw)


@dataclass(frozen=True, slots=True)
class _Fetched:
    body: bytes
    etag: str | None
    last_modified: str | None


@dataclass(slots=True)
class FeedStatus:
    spec: FeedSpec
    load: FeedLoad | None = None
    """The last good load (kept when a refresh fails)."""
    signature: str = ""
    stat_signature: tuple = ()
    etag: str | None = None
    last_modified: str | None = None
    last_attempt: float = 0.0
    last_success: float = 0.0
    last_error: str | None = None
    last_result: str = "never loaded"


class FeedManager:
    """Loads and refreshes feeds; :meth:`current` returns the index to match against."""

    def __init__(self, specs: Sequence[FeedSpec], *, client: httpx.Client | None = None, timeout_s: float = 30.0,
                 max_bytes: int = 512 * 1024 * 1024):
        names = [s.name for s in specs]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"feed names must be unique; repeated: {', '.join(sorted(dup))}")
        self.feeds = {s.name: FeedStatus(s) for s in specs}
        self._client = client or httpx.Client(timeout=timeout_s, follow_redirects=True)
        self._own_client = client is None
        self.max_bytes = max_bytes
        self._index = IocIndex.build(())
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def current(self) -> IocIndex:
        """The index in force (swapped atomically by refreshes)."""
        return self._index

    # -- refresh ------------------------------------------------------------------------
    def refresh(self, *, force: bool = False) -> dict[str, str]:
        """Refresh feeds that are due (all with ``force``); returns each feed's outcome:
        ``loaded``, ``unchanged``, ``not due`` or ``failed: <reason>`` (last good set kept)."""
        with self._lock:
            outcome: dict[str, str] = {}
            changed = False
            now = time.time()
            for name, st in self.feeds.items():
                if not force and st.load is not None and now - st.last_attempt < st.spec.refresh_s:
                    outcome[name] = "not due"
                    continue
                st.last_attempt = now
                try:
                    new = self._fetch(st)
                except (FeedError, httpx.HTTPError, OSError) as exc:
                    st.last_error = f"{type(exc).__name__}: {exc}" if isinstance(exc, httpx.HTTPError) else str(exc)
                    st.last_result = outcome[name] = f"failed: {st.last_error}"
                    continue
                except Exception as exc:
                    log.exception("feed %s: unexpected error while loading %s", name, st.spec.location)
                    st.last_error = f"unexpected {type(exc).__name__} while loading {st.spec.location}: {exc}"
                    st.last_result = outcome[name] = f"failed: {st.last_error}"
                    continue
                st.last_success, st.last_error = now, None
                if new is None:
                    st.last_result = outcome[name] = "unchanged"
                else:
                    st.load, changed = new, True
                    st.last_result = outcome[name] = "loaded"
            if changed:
                self._index = IocIndex.build(
                    ind for st in self.feeds.values() if st.load is not None for ind in st.load.indicators)
            return outcome

    def _fetch(self, st: FeedStatus) -> FeedLoad | None:
        spec = st.spec
        if spec.is_url:
            return self._fetch_url(st)
        path = Path(spec.location)
        quick = _stat_signature(path)
        racy = any(mtime > time.time_ns() - 2_000_000_000 for _, mtime, _ in quick)
        if quick == st.stat_signature and not racy and st.load is not None:
            return None  # same mtimes and sizes: not even read
        sig = _path_signature(path)
        if sig == st.signature and st.load is not None:
            st.stat_signature = quick  # touched but not changed
            return None
        load = load_feed_path(path, name=spec.name, format=spec.format)
        st.signature, st.stat_signature = sig, quick
        return load

    def _get(self, url: str, st: FeedStatus | None, headers: dict[str, str]) -> _Fetched | None:
        """GET ``url`` (conditional when ``st`` has validators); None on 304. The body is
        streamed and refused past ``max_bytes``: a feed must not exhaust memory."""
        h = dict(headers)
        if st is not None and st.load is not None:
            if st.etag:
                h["If-None-Match"] = st.etag
            if st.last_modified:
                h["If-Modified-Since"] = st.last_modified
        with self._client.stream("GET", url, headers=h) as resp:
            if resp.status_code == 304 and st is not None and st.load is not None:
                return None
            if resp.status_code != 200:
                raise FeedError(f"{url}: HTTP {resp.status_code} {resp.reason_phrase}")
            parts: list[bytes] = []
            size = 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise FeedError(f"{url}: larger than {self.max_bytes} bytes; refusing the download")
                parts.append(chunk)
            return _Fetched(b"".join(parts), resp.headers.get("ETag"), resp.headers.get("Last-Modified"))

    def _fetch_url(self, st: FeedStatus) -> FeedLoad | None:
        spec = st.spec
        resp = self._get(spec.location, st, spec.headers)
        if resp is None:
            return None
        data = resp.body
        sha = hashlib.sha256(data).hexdigest()
        if sha == st.signature and st.load is not None:
            self._remember_validators(st, resp)
            return None
        fmt = spec.format
        if spec.location.rstrip("/").endswith("manifest.json") or (fmt in ("auto", "misp")
                                                                   and sniff_format(data, spec.location) == "misp-manifest"):
            load = self._fetch_misp_feed(spec, data)
        else:
            load = load_feed_bytes(data, name=spec.name, origin=spec.location, format=fmt)
        st.signature = sha
        self._remember_validators(st, resp)
        return load

    @staticmethod
    def _remember_validators(st: FeedStatus, resp: _Fetched) -> None:
        st.etag = resp.etag
        st.last_modified = resp.last_modified

    def _fetch_misp_feed(self, spec: FeedSpec, manifest_bytes: bytes) -> FeedLoad:
        try:
            manifest = json.loads(manifest_bytes)
        except ValueError as exc:
            raise FeedError(f"{spec.location}: invalid JSON: {exc}") from None
        base = spec.location.rsplit("/", 1)[0]
        load = FeedLoad(spec.name, "misp", spec.location)
        for uuid in misp_manifest_events(manifest, spec.location):
            url = f"{base}/{uuid}.json"
            resp = self._get(url, None, spec.headers)
            assert resp is not None  # unconditional request: never a 304
            try:
                load_misp_event_doc(json.loads(resp.body), load, url)
            except (ValueError, FeedError) as exc:
                load.problems.append(FeedProblem(url, f"event not loaded: {exc}"))
        return load

    # -- background ---------------------------------------------------------------------
    def start(self, interval_s: float = 60.0) -> None:
        """Refresh due feeds every ``interval_s`` seconds in a daemon thread."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval_s):
                self.refresh()

        self._thread = threading.Thread(target=loop, name="intel-feeds", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        self.stop()
        if self._own_client:
            self._client.close()

    def status(self) -> list[dict]:
        """Per feed: counts, problems, last result and error (for /api and the CLI)."""
        out = []
        for name, st in self.feeds.items():
            out.append({
                "name": name,
                "location": st.spec.location,
                "counts": st.load.counts() if st.load else {},
                "problems": len(st.load.problems) if st.load else 0,
                "last_result": st.last_result,
                "last_error": st.last_error,
                "last_success": _dt.datetime.fromtimestamp(st.last_success, _dt.timezone.utc).isoformat()
                if st.last_success else None,
            })
        return out


def _stat_signature(path: Path) -> tuple:
    """(name, mtime_ns, size) of a feed file or of every JSON file of a MISP feed folder."""
    try:
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        return tuple((p.name, st.st_mtime_ns, st.st_size) for p in files for st in [p.stat()])
    except OSError as exc:
        raise FeedError(f"{path}: cannot read feed: {exc.strerror}") from None


def _path_signature(path: Path) -> str:
    """Content hash of a feed file, or of every JSON file of a MISP feed folder."""
    h = hashlib.sha256()
    try:
        if path.is_dir():
            for p in sorted(path.glob("*.json")):
                h.update(p.name.encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
        else:
            h.update(path.read_bytes())
    except OSError as exc:
        raise FeedError(f"{path}: cannot read feed: {exc.strerror}") from None
    return h.hexdigest()
