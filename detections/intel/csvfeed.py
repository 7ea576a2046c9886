"""CSV feeds: a header row with ``type,value`` and optionally ``source``, ``confidence``,
``expires``, ``description``. Lines starting with ``#`` are comments.

Types: ``ip`` (``ipv4``, ``ipv6``, ``ip-src``, ``ip-dst``), ``cidr``, ``domain``
(``hostname``, ``fqdn``), ``url``, ``md5``, ``sha1``, ``sha256``, ``hash`` (by length).
"""
from __future__ import annotations

import csv
import datetime as _dt
import io

from detections.intel.feedload import FeedError, FeedLoad, make_indicator, parse_expiry
from detections.intel.indicators import FeedProblem, IocValueError

__all__ = ["load_csv_text", "CSV_TYPES"]

CSV_TYPES = {
    "ip": "ip", "ipv4": "ip", "ipv6": "ip", "ip-src": "ip", "ip-dst": "ip", "ipv4-addr": "ip", "ipv6-addr": "ip",
    "cidr": "cidr", "network": "cidr",
    "domain": "domain", "hostname": "domain", "fqdn": "domain", "domain-name": "domain",
    "url": "url", "md5": "md5", "sha1": "sha1", "sha-1": "sha1", "sha256": "sha256", "sha-256": "sha256",
    "hash": "hash",
}
_KNOWN = {"type", "value", "source", "confidence", "expires", "description"}


def load_csv_text(text: str, *, name: str, origin: str, now: _dt.datetime | None = None) -> FeedLoad:
    now = now or _dt.datetime.now(_dt.timezone.utc)
    load = FeedLoad(name, "csv", origin)
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise FeedError(f"{origin}: empty CSV feed (expected a header row: type,value[,source,confidence,expires])")
    header_no, header_line = lines[0]
    header = [h.strip().lower() for h in next(csv.reader([header_line]))]
    if "type" not in header or "value" not in header:
        raise FeedError(f"{origin}:{header_no}: header must name the columns \"type\" and \"value\" "
                        f"(found {', '.join(header) or 'nothing'})")
    extra = [h for h in header if h not in _KNOWN]
    if extra:
        load.problems.append(FeedProblem(f"{origin}:{header_no}", f"columns ignored: {', '.join(extra)}", "warning"))
    rows = csv.reader(io.StringIO("\n".join(line for _, line in lines[1:])))
    for (lineno, _), row in zip(lines[1:], rows):
        where = f"{origin}:{lineno}"
        rec = {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)}
        if len(row) > len(header):
            load.problems.append(FeedProblem(where, f"{len(row)} fields but the header has {len(header)}"))
            continue
        kind = CSV_TYPES.get(rec["type"].lower())
        if kind is None:
            load.problems.append(FeedProblem(where, f"unknown type {rec['type']!r} "
                                                    f"(use one of: {', '.join(sorted(set(CSV_TYPES)))})"))
            continue
        try:
            conf = int(rec["confidence"]) if rec.get("confidence") else None
        except ValueError:
            load.problems.append(FeedProblem(where, f"confidence {rec['confidence']!r} is not an integer 0-100"))
            continue
        try:
            expires = parse_expiry(rec.get("expires"))
            if expires is not None and expires <= now:
                load.skipped_expired += 1
                continue
            load.indicators.append(make_indicator(kind, rec["value"], feed=name, source=rec.get("source", ""),
                                                  confidence=conf, expires=expires, id=where,
                                                  description=rec.get("description", "")))
        except IocValueError as exc:
            load.problems.append(FeedProblem(where, str(exc)))
    return load
