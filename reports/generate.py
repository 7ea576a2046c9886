"""One report, end to end: collect, render to a temp file, publish atomically, write the
manifest, record the hash in the audit log.

Example::

    manifest = generate_report(sources, parse_period("2026-11-16", "2026-11-22"),
                               Path("week.pdf"), fmt="pdf", lang="vi", actor="cli:an")
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.reports import FORMATS, ReportError
from reports.atomic import atomic_path
from reports.collect import Sources, collect
from reports.i18n import Translator
from reports.manifest import sidecar_of, write_manifest
from reports.period import Period
from reports.render_csv import AlertCsvWriter
from reports.render_html import render_html
from reports.render_json import render_json

__all__ = ["generate_report", "figures_of"]

_RENDERERS: dict[str, Callable[[dict[str, Any], Translator, Path], Any]] = {
    "html": render_html,
    "json": lambda d, tr, p: render_json(d, tr.lang, p),
}


def _render_pdf(d: dict[str, Any], tr: Translator, p: Path) -> Any:
    from reports.render_pdf import render_pdf  # reportlab is imported only when a PDF is asked for

    return render_pdf(d, tr, p)


_RENDERERS["pdf"] = _render_pdf


def figures_of(data: dict[str, Any]) -> dict[str, Any]:
    """The headline figures repeated in the manifest (and the API's report list)."""
    al = data["alerts"]
    return {"alerts": al["total"], "open": al["open"], "closed": al["closed"], "by_level": al["by_level"],
            "mtta_s": data["response"]["mtta_s"], "mttr_s": data["response"]["mttr_s"],
            "not_available": data["not_available"]}


def generate_report(src: Sources, period: Period, out: Path, *, fmt: str, lang: str, actor: str,
                    kind: str = "adhoc", source_ip: str = "", page_size: int = 2000) -> dict[str, Any]:
    """Write ``out`` and ``out.manifest.json``; returns the manifest.

    Nothing half-written is ever left at ``out``: rendering goes to a temp file beside it
    that replaces ``out`` only when complete."""
    if fmt not in FORMATS:
        raise ReportError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    tr = Translator(lang, period.tz)  # checks the language and zone before any work
    out = Path(out)
    if out.is_dir():
        raise ReportError(f"{out} is a folder; give a file name")
    with atomic_path(out) as tmp:
        if fmt == "csv":
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                writer = AlertCsvWriter(fh, tr)
                data = collect(src, period, on_alert=writer.write, generated_by=actor, page_size=page_size)
        else:
            data = collect(src, period, generated_by=actor, page_size=page_size)
            _RENDERERS[fmt](data, tr, tmp)
    try:
        manifest = write_manifest(out, {
            "kind": "report", "format": fmt, "lang": lang, "schedule": kind,
            "period": {"start": period.start_iso, "end": period.end_iso, "tz": period.tz},
            "generated_at": data["generated_at"], "generated_by": actor,
            "audit_head": data["audit"]["head"], "audit_seq": data["audit"]["head_seq"],
            "audit_chain_ok": data["audit"]["ok"], "figures": figures_of(data)})
    except BaseException:
        out.unlink(missing_ok=True)
        sidecar_of(out).unlink(missing_ok=True)
        raise
    src.audit.append(actor, "report.generate", f"report:{out.name}", source_ip=source_ip,
                     details={"file": out.name, "sha256": manifest["sha256"], "format": fmt, "lang": lang,
                              "schedule": kind, "start": period.start_iso, "end": period.end_iso,
                              "alerts": data["alerts"]["total"]})
    return manifest
