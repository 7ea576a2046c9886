"""Reports kept in ``<data>/reports/``: made on request (API, console) or on schedule,
listed from their manifests, found by name for download.

Implements :class:`core.reports.ReportService`. Names are generated, never taken from
the caller (``report-<first day>_<last day>-<lang>-<stamp>.<fmt>``,
``evidence-case-<id>-<stamp>.zip``), and :meth:`path_of` only
resolves names of that shape inside the folder, so a download cannot escape it.

Scheduled reports: :meth:`ReportGenerator.run_due` makes, for each configured schedule
(daily, weekly Monday-Sunday, monthly), the last completed period's report in every
configured format and language unless the folder already holds it; the server calls it
every ``reports.check_interval_s`` (see ``citysoc/runtime.py``), and a restart catches
up on the period it missed.
"""
from __future__ import annotations

import datetime as _dt
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from core.reports import FORMATS, LANGS, SCHEDULES, ReportError, ReportInfo, ReportNotFound, ReportRequest, ReportSettings
from reports.collect import Sources
from reports.evidence import EvidenceSources, export_evidence
from reports.i18n import zone
from reports.generate import generate_report
from reports.manifest import read_manifest, sidecar_of
from reports.period import Period, parse_period, schedule_period

__all__ = ["ReportGenerator"]

log = logging.getLogger("citysoc.reports")

_NAME = re.compile(r"^((report|daily|weekly|monthly)-[0-9]{8}_[0-9]{8}-(vi|en)-[0-9]{8}T[0-9]{6}Z[0-9]*\."
                   r"(pdf|csv|json|html)|evidence-(case|alert)-[0-9]+-[0-9]{8}T[0-9]{6}Z[0-9]*\.zip)$")


def _days(period: Period) -> str:
    """``20261116_20261122``: the first and last local day the period covers."""
    z = zone(period.tz)
    last = period.end - _dt.timedelta(microseconds=1)
    return f"{period.start.astimezone(z):%Y%m%d}_{last.astimezone(z):%Y%m%d}"


class ReportGenerator:
    """Example::

        gen = ReportGenerator(Path("data/reports"), sources)
        info = gen.generate(ReportRequest(start="2026-11-16", end="2026-11-22", fmt="csv", lang="en"),
                            actor="user:an")
    """

    def __init__(self, folder: Path, sources: Sources, settings: ReportSettings | None = None,
                 clock: Callable[[], _dt.datetime] = lambda: _dt.datetime.now(_dt.timezone.utc),
                 evidence: EvidenceSources | None = None):
        self.folder = Path(folder)
        self.sources = sources
        self.evidence_sources = evidence
        self.settings = settings or ReportSettings()
        self._clock = clock
        self._lock = threading.Lock()  # one report at a time: each one reads whole stores

    # -- ReportService -------------------------------------------------------------------
    def generate(self, request: ReportRequest, *, actor: str, source_ip: str = "") -> ReportInfo:
        if request.fmt not in FORMATS:
            raise ReportError(f"unknown format {request.fmt!r}; use one of {', '.join(FORMATS)}")
        if request.lang not in LANGS:
            raise ReportError(f"unknown language {request.lang!r}; use one of {', '.join(LANGS)}")
        period = parse_period(request.start, request.end, request.tz)
        return self._make(period, request.fmt, request.lang, request.kind, actor, source_ip)

    def evidence(self, *, case_id: int | None = None, alert_id: int | None = None, actor: str,
                 source_ip: str = "") -> ReportInfo:
        if self.evidence_sources is None:
            raise ReportError("evidence export is not wired in this process")
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            subject = f"case-{case_id}" if case_id is not None else f"alert-{alert_id}"
            name = f"evidence-{subject}-{self._stamp()}.zip"
            m = export_evidence(self.evidence_sources, self.folder / name, actor=actor, case_id=case_id,
                                alert_id=alert_id, source_ip=source_ip)
            return self._info(m)

    def list(self) -> list[ReportInfo]:
        out = []
        if not self.folder.exists():
            return out
        for side in self.folder.glob("*.manifest.json"):
            try:
                out.append(self._info(read_manifest(side)))
            except (ValueError, KeyError, OSError, orjson.JSONDecodeError):
                log.warning("reports: unreadable manifest %s skipped", side)
        out.sort(key=lambda i: (i.generated_at, i.name), reverse=True)
        return out

    def path_of(self, name: str) -> Path:
        base = name[: -len(".manifest.json")] if name.endswith(".manifest.json") else name
        if not _NAME.match(base):
            raise ReportNotFound(f"report {name!r} does not exist")
        p = self.folder / name
        if not p.is_file():
            raise ReportNotFound(f"report {name!r} does not exist")
        return p

    # -- scheduling ------------------------------------------------------------------------
    def run_due(self) -> list[ReportInfo]:
        """Make the missing reports of the last completed scheduled periods."""
        made: list[ReportInfo] = []
        now = self._clock()
        for kind in self.settings.schedules:
            if kind not in SCHEDULES:
                log.error("reports: unknown schedule %r in settings (use %s)", kind, ", ".join(SCHEDULES))
                continue
            period = schedule_period(kind, now, self.settings.tz)
            for lang in self.settings.langs:
                for fmt in self.settings.formats:
                    prefix = f"{kind}-{_days(period)}-{lang}-"
                    if any(p.name.endswith(f".{fmt}") for p in self.folder.glob(prefix + "*")):
                        continue
                    try:
                        made.append(self._make(period, fmt, lang, kind, f"system:schedule-{kind}", ""))
                    except ReportError as exc:
                        log.error("reports: scheduled %s report (%s, %s) not made: %s", kind, fmt, lang, exc)
        return made

    # -- internals -------------------------------------------------------------------------
    def _make(self, period: Period, fmt: str, lang: str, kind: str, actor: str, source_ip: str) -> ReportInfo:
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            prefix = "report" if kind == "adhoc" else kind
            name = f"{prefix}-{_days(period)}-{lang}-{self._stamp()}.{fmt}"
            manifest = generate_report(self.sources, period, self.folder / name, fmt=fmt, lang=lang, actor=actor,
                                       kind=kind, source_ip=source_ip)
            return self._info(manifest)

    def _stamp(self) -> str:
        """Generation time to the millisecond-ish (the monotonic clock breaks ties)."""
        now = self._clock().astimezone(_dt.timezone.utc)
        return now.strftime("%Y%m%dT%H%M%SZ") + f"{time.monotonic_ns() % 1000:03d}"

    def _info(self, m: dict) -> ReportInfo:
        if m.get("kind") == "evidence":
            return ReportInfo(name=m["file"], fmt="zip", lang="", kind="evidence", start="", end="", size=m["size"],
                              sha256=m["sha256"], generated_at=m["generated_at"], generated_by=m["generated_by"],
                              audit_head=m["audit_head"], figures={"subject": m["subject"], "members": m["members"]})
        return ReportInfo(name=m["file"], fmt=m["format"], lang=m["lang"], kind=m.get("schedule", "adhoc"),
                          start=m["period"]["start"], end=m["period"]["end"], size=m["size"], sha256=m["sha256"],
                          generated_at=m["generated_at"], generated_by=m["generated_by"], audit_head=m["audit_head"],
                          figures=m.get("figures", {}))

    def manifest_path(self, name: str) -> Path:
        return sidecar_of(self.path_of(name))

    async def run_forever(self) -> None:
        """The scheduler task (``citysoc serve``): :meth:`run_due` now and every
        ``check_interval_s``, in a worker thread so the event loop keeps serving."""
        import asyncio

        while True:
            try:
                made = await asyncio.to_thread(self.run_due)
                for info in made:
                    log.info("reports: scheduled %s report %s written (%d bytes)", info.kind, info.name, info.size)
            except Exception:
                log.exception("reports: scheduled run failed; will retry")
            await asyncio.sleep(self.settings.check_interval_s)
