"""HTML: one self-contained page (inline CSS, no script, no external resource) that a
browser prints or archives as is. Every value is escaped; the audit head and generation
time are in the body and in ``<meta>`` tags for tools."""
from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from reports.i18n import Translator
from reports.sections import Block, build_blocks

__all__ = ["render_html"]

_CSS = """body{font-family:"DejaVu Sans",Arial,sans-serif;font-size:13px;margin:24px;color:#1c2733}
h1{font-size:22px;margin:0}h2{font-size:16px;color:#1b3a5c;margin:22px 0 6px}.sub{color:#667}
table{border-collapse:collapse;margin:4px 0;min-width:40%}td,th{border:1px solid #b0b8c0;padding:3px 7px;
text-align:left;vertical-align:top}th{background:#e4eaf0}.kv th{background:#f1f4f7;width:34%}
.bar{background:#2f6f9f;height:12px;display:inline-block}.na{color:#a33}.note{color:#555;font-size:12px}
@media print{body{margin:0}h2{break-after:avoid}}"""


def _table(b: Block, none: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in b.headers)
    rows = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in r) + "</tr>" for r in b.rows)
    if not rows:
        rows = f'<tr><td colspan="{len(b.headers)}">{escape(none)}</td></tr>'
    note = f'<p class="note">{escape(b.note)}</p>' if b.note else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{note}"


def _bars(b: Block) -> str:
    top = max((v for _, v in b.bars), default=0) or 1
    rows = "".join(f'<tr><td>{escape(day)}</td><td><span class="bar" style="width:{round(300 * v / top)}px">'
                   f"</span> {v}</td></tr>" for day, v in b.bars)
    return f"<table><thead><tr>{''.join(f'<th>{escape(h)}</th>' for h in b.headers)}</tr></thead>{rows}</table>"


def render_html(data: dict[str, Any], tr: Translator, out: Path) -> None:
    parts = [f'<!DOCTYPE html><html lang="{tr.lang}"><head><meta charset="utf-8">',
             f"<title>{escape(tr('title'))}</title>",
             f'<meta name="citysoc-audit-head" content="{escape(data["audit"]["head"])}">',
             f'<meta name="citysoc-generated-at" content="{escape(data["generated_at"])}">',
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{escape(tr('title'))}</h1><p class=\"sub\">{escape(tr('subtitle'))}</p>"]
    for b in build_blocks(data, tr):
        if b.kind == "note":
            parts.append(f'<p class="note">{escape(b.note)}</p>')
            continue
        parts.append(f"<section><h2>{escape(b.title)}</h2>")
        if b.kind == "kv":
            parts.append('<table class="kv">' + "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>"
                                                       for k, v in b.rows) + "</table>")
        elif b.kind == "bars":
            parts.append(_bars(b))
        elif b.kind == "na":
            parts.append(f'<p class="na">{escape(b.note)}</p>')
        else:
            parts.append(_table(b, tr("none")))
        parts.append("</section>")
    parts.append("</body></html>\n")
    out.write_text("".join(parts), encoding="utf-8")
