"""PDF for printing (A4, reportlab): tables, an alerts-per-day bar chart, and on every
page the page number, generation time and the audit-chain head.

Fonts: DejaVu Sans (Debian ``fonts-dejavu-core``) is embedded, because reportlab's
built-in Helvetica has no glyphs for Vietnamese ("ạ ế ữ" would print as boxes).
"""
from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from core.reports import ReportError
from reports.i18n import Translator
from reports.sections import Block, build_blocks

__all__ = ["render_pdf", "FONT_DIRS"]

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
_FONT, _BOLD = "CitysocSans", "CitysocSans-Bold"


@cache
def _fonts() -> None:
    for d in FONT_DIRS:
        regular, bold = d / "DejaVuSans.ttf", d / "DejaVuSans-Bold.ttf"
        if regular.exists() and bold.exists():
            pdfmetrics.registerFont(TTFont(_FONT, str(regular)))
            pdfmetrics.registerFont(TTFont(_BOLD, str(bold)))
            return
    raise ReportError("PDF reports need the DejaVu Sans font (Debian package fonts-dejavu-core) for Vietnamese "
                      "text; install it or choose --format html/json/csv")


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=_FONT, bulletFontName=_FONT, fontSize=8.5, leading=11, alignment=TA_LEFT)
    return {
        "body": base,
        "cell": ParagraphStyle("cell", parent=base, fontSize=7.5, leading=9.5),
        "head": ParagraphStyle("headcell", parent=base, fontName=_BOLD, fontSize=7.5, leading=9.5),
        "title": ParagraphStyle("title", parent=base, fontName=_BOLD, fontSize=17, leading=21, spaceAfter=2),
        "subtitle": ParagraphStyle("subtitle", parent=base, fontSize=10, leading=13, textColor=colors.grey,
                                   spaceAfter=8),
        "h2": ParagraphStyle("h2", parent=base, fontName=_BOLD, fontSize=11.5, leading=15, spaceBefore=8,
                             spaceAfter=4, textColor=colors.HexColor("#1b3a5c")),
        "note": ParagraphStyle("note", parent=base, fontSize=7.5, leading=9.5, textColor=colors.HexColor("#444444")),
    }


_GRID = TableStyle([
    ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#b0b8c0")),
    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e4eaf0")),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("TOPPADDING", (0, 0), (-1, -1), 2),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
])


def _widths(b: Block, width: float) -> list[float]:
    """Column widths from the text they hold. Each column wants its natural width (the
    longest cell or header); when they do not all fit, only the widest are cut to one
    common cap (water-filling), so short columns ("Status", dates, counts) never break
    and long text wraps; when they fit, the spare room is shared in proportion."""
    pad = 14.0  # cell padding (6 + 6) and a little air
    nat = []
    for i, head in enumerate(b.headers):
        cells = [str(r[i]) for r in b.rows[:200] if i < len(r)]
        text_w = max((pdfmetrics.stringWidth(c, _FONT, 7.5) for c in cells), default=0.0)
        nat.append(max(text_w, pdfmetrics.stringWidth(head, _BOLD, 7.5)) + pad)
    total = sum(nat)
    if total <= width:
        return [w * width / total for w in nat]
    lo, hi = 0.0, max(nat)
    for _ in range(40):  # the cap c with sum(min(w, c)) == width
        c = (lo + hi) / 2
        lo, hi = (c, hi) if sum(min(w, c) for w in nat) < width else (lo, c)
    return [min(w, lo) for w in nat]


def _table(b: Block, st: dict[str, ParagraphStyle], width: float, none: str) -> Table:
    head = [Paragraph(escape(h), st["head"]) for h in b.headers]
    rows = [[Paragraph(escape(str(c)), st["cell"]) for c in r] for r in b.rows]
    if not rows:
        rows = [[Paragraph(escape(none), st["cell"])] + [""] * (len(head) - 1)]
    t = Table([head, *rows], colWidths=_widths(b, width), repeatRows=1)
    t.setStyle(_GRID)
    return t


def _kv(b: Block, st: dict[str, ParagraphStyle], width: float) -> Table:
    rows = [[Paragraph(escape(k), st["head"]), Paragraph(escape(v), st["cell"])] for k, v in b.rows]
    t = Table(rows, colWidths=[width * 0.36, width * 0.64])
    t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#b0b8c0")),
                           ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f1f4f7")),
                           ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return t


def _bars(b: Block, width: float) -> Drawing:
    """Alerts per day as vertical bars, drawn with reportlab's graphics API."""
    h = 62 * mm
    d = Drawing(width, h)
    labels = [x for x, _ in b.bars] or ["-"]
    values = [v for _, v in b.bars] or [0]
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 32, 30, width - 44, h - 45
    chart.data = [values]
    chart.bars[0].fillColor = colors.HexColor("#2f6f9f")
    chart.bars[0].strokeColor = None
    chart.valueAxis.valueMin = 0
    top = max(values) or 1
    chart.valueAxis.valueMax = top * 1.15
    chart.valueAxis.valueStep = max(1, round(top / 5))
    chart.valueAxis.labels.fontName = _FONT
    chart.valueAxis.labels.fontSize = 7
    every = max(1, -(-len(labels) // 31))  # at most ~31 day labels under the bars; every bar is drawn
    chart.categoryAxis.categoryNames = [x if i % every == 0 else "" for i, x in enumerate(labels)]
    chart.categoryAxis.labels.fontName = _FONT
    chart.categoryAxis.labels.fontSize = 6.5 if len(labels) <= 16 else 5
    chart.categoryAxis.labels.angle = 0 if len(labels) <= 8 else 45
    chart.categoryAxis.labels.boxAnchor = "n" if len(labels) <= 8 else "ne"
    chart.barLabelFormat = "%d" if len(labels) <= 31 else None
    chart.barLabels.fontName = _FONT
    chart.barLabels.fontSize = 6.5
    chart.barLabels.nudge = 6
    d.add(chart)
    return d


def render_pdf(data: dict[str, Any], tr: Translator, out: Path) -> int:
    """Write the PDF to ``out``; returns the page count."""
    _fonts()
    st = _styles()
    doc = SimpleDocTemplate(str(out), pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=14 * mm,
                            bottomMargin=16 * mm, title=tr("title"), author="citysoc",
                            subject=f"{data['period']['start']} – {data['period']['end']}")
    width = doc.width
    story: list[Any] = [Paragraph(escape(tr("title")), st["title"]), Paragraph(escape(tr("subtitle")), st["subtitle"])]
    for b in build_blocks(data, tr):
        if b.kind == "note":
            story += [Spacer(1, 6), Paragraph(escape(b.note), st["note"])]
            continue
        title = Paragraph(escape(b.title), st["h2"])
        if b.kind == "kv":
            story += [title, _kv(b, st, width)]
        elif b.kind == "bars":
            story.append(KeepTogether([title, _bars(b, width)]))
        elif b.kind == "na":
            story.append(KeepTogether([title, Paragraph(escape(b.note), st["body"])]))
        else:
            parts: list[Any] = [title, _table(b, st, width, tr("none"))]
            if b.note:
                parts.append(Paragraph(escape(b.note), st["note"]))
            story.append(KeepTogether(parts) if len(b.rows) < 25 else parts[0])
            if len(b.rows) >= 25:
                story += parts[1:]
    head = data["audit"]["head"]
    footer = f"citysoc · {tr('generated_at')} {tr.datetime(data['generated_at'])} · {tr('audit_head')}: {head[:16]}…"

    def on_page(canvas: Any, doc_: Any) -> None:
        canvas.saveState()
        canvas.setFont(_FONT, 6.5)
        canvas.setFillColor(colors.grey)
        canvas.drawString(15 * mm, 9 * mm, footer)
        canvas.drawRightString(A4[0] - 15 * mm, 9 * mm, f"{tr('page')} {doc_.page}")
        canvas.restoreState()

    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return doc.page
