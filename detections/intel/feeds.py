"""Load a feed from a file, a folder (MISP feed layout) or bytes fetched over HTTP,
picking the parser from the ``format`` given or by sniffing the content.

Example::

    >>> load = load_feed_path(Path("feeds/cert-vn.json"))
    >>> load.counts()
    {'ip': 120, 'domain': 48, 'sha256': 9}
"""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from detections.intel.csvfeed import load_csv_text
from detections.intel.feedload import FeedError, FeedLoad
from detections.intel.indicators import FeedProblem
from detections.intel.misp import load_misp_event_doc, misp_manifest_events
from detections.intel.stix import load_stix_bundle

__all__ = ["FORMATS", "sniff_format", "load_feed_bytes", "load_feed_path", "load_misp_dir", "feed_name"]

FORMATS = ("auto", "stix", "misp", "csv")


def feed_name(location: str) -> str:
    """A default feed name from a path or URL: the last component without extension."""
    last = location.rstrip("/").rsplit("/", 1)[-1]
    if last == "manifest.json":
        last = location.rstrip("/").rsplit("/", 2)[-2]
    return last.split("?", 1)[0].rsplit(".", 1)[0] or "feed"


def _json(data: bytes, origin: str) -> Any:
    try:
        return json.loads(data)
    except UnicodeDecodeError:
        raise FeedError(f"{origin}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise FeedError(f"{origin}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise FeedError(f"{origin}: JSON nested too deeply to be a feed") from None


def sniff_format(data: bytes, origin: str) -> str:
    """``stix``, ``misp`` or ``csv`` from the content (JSON shape, or a CSV header)."""
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        doc = _json(data, origin)
        if isinstance(doc, dict) and doc.get("type") == "bundle":
            return "stix"
        if isinstance(doc, dict) and ("Event" in doc or "response" in doc):
            return "misp"
        if isinstance(doc, list) and doc and isinstance(doc[0], dict) and "Event" in doc[0]:
            return "misp"
        if isinstance(doc, dict) and doc and all(isinstance(v, dict) and "info" in v for v in doc.values()):
            return "misp-manifest"
        raise FeedError(f"{origin}: JSON that is neither a STIX bundle nor a MISP event; "
                        "give the format explicitly if it is one")
    return "csv"


def load_feed_bytes(data: bytes, *, name: str, origin: str, format: str = "auto",
                    now: _dt.datetime | None = None) -> FeedLoad:
    """Parse one feed document. Raises :class:`FeedError` when the whole feed is unusable."""
    if format not in FORMATS:
        raise FeedError(f"{origin}: unknown feed format {format!r} (use one of {', '.join(FORMATS)})")
    fmt = sniff_format(data, origin) if format == "auto" else format
    if fmt == "misp-manifest":
        raise FeedError(f"{origin}: this is a MISP feed manifest; load its folder (or URL) instead of the file")
    if fmt == "csv":
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise FeedError(f"{origin}: CSV feed is not UTF-8 text") from None
        return load_csv_text(text, name=name, origin=origin, now=now)
    doc = _json(data, origin)
    if fmt == "stix":
        return load_stix_bundle(doc, name=name, origin=origin, now=now)
    load = FeedLoad(name, "misp", origin)
    load_misp_event_doc(doc, load, origin)
    return load


def load_misp_dir(folder: Path, *, name: str | None = None) -> FeedLoad:
    """A MISP feed folder: ``manifest.json`` plus one ``<uuid>.json`` per event listed."""
    manifest_path = folder / "manifest.json"
    name = name or folder.name
    try:
        manifest = _json(manifest_path.read_bytes(), str(manifest_path))
    except OSError as exc:
        raise FeedError(f"{manifest_path}: cannot read MISP manifest: {exc.strerror}") from None
    load = FeedLoad(name, "misp", str(folder))
    for uuid in misp_manifest_events(manifest, str(manifest_path)):
        path = folder / f"{uuid}.json"
        try:
            doc = _json(path.read_bytes(), str(path))
            load_misp_event_doc(doc, load, str(path))
        except OSError as exc:
            load.problems.append(FeedProblem(str(path), f"event listed in manifest.json but not readable: {exc.strerror}"))
        except FeedError as exc:
            load.problems.append(FeedProblem(str(path), str(exc).split(": ", 1)[-1]))
    return load


def load_feed_path(path: Path, *, name: str | None = None, format: str = "auto",
                   now: _dt.datetime | None = None) -> FeedLoad:
    """Load a feed file, or a MISP feed folder."""
    path = Path(path)
    name = name or feed_name(str(path))
    if path.is_dir():
        if (path / "manifest.json").is_file():
            return load_misp_dir(path, name=name)
        raise FeedError(f"{path}: a folder feed must be a MISP feed with a manifest.json")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FeedError(f"{path}: cannot read feed: {exc.strerror}") from None
    if format == "auto" and path.suffix.lower() == ".csv":
        format = "csv"
    return load_feed_bytes(data, name=name, origin=str(path), format=format, now=now)
