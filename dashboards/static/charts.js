// citysoc console: small SVG charts drawn with DOM APIs (labels via textContent).
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  function s(tag, attrs, text) {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
    if (text !== undefined) n.textContent = String(text);
    return n;
  }

  // Horizontal bars: items [{label, value, href?, cls?}]
  function hbar(container, items, opts) {
    opts = opts || {};
    while (container.firstChild) container.removeChild(container.firstChild);
    if (!items.length) { container.append(CS.el("p", {class: "muted", text: CS.T("chart.no_data")})); return; }
    const row = 22, labelW = opts.labelWidth || 160, w = 460, barW = w - labelW - 60;
    const max = Math.max(1, ...items.map(function (i) { return i.value; }));
    const svg = s("svg", {viewBox: "0 0 " + w + " " + (items.length * row + 4), class: "svgchart hbar", role: "img"});
    items.forEach(function (it, i) {
      const y = i * row + 2;
      const g = s("g", {class: "bar " + (it.cls || "")});
      const label = s("text", {x: labelW - 6, y: y + 15, "text-anchor": "end", class: "lbl"}, truncate(it.label, 26));
      label.append(s("title", {}, it.label));
      const len = Math.max(1, Math.round(barW * it.value / max));
      const rect = s("rect", {x: labelW, y: y + 3, width: len, height: row - 6, rx: 2});
      const val = s("text", {x: labelW + len + 5, y: y + 15, class: "val"}, CS.fmtNum(it.value));
      if (it.href) {
        const a = s("a", {});
        a.setAttributeNS("http://www.w3.org/1999/xlink", "href", CS.safeHref(it.href));
        a.setAttribute("href", CS.safeHref(it.href));
        a.append(label, rect);
        g.append(a, val);
      } else g.append(label, rect, val);
      svg.append(g);
    });
    container.append(svg);
  }

  // Columns over time: buckets [{key: iso, <series>: n, ...}], series [{name, cls, label}]
  function columns(container, buckets, series, opts) {
    opts = opts || {};
    while (container.firstChild) container.removeChild(container.firstChild);
    if (!buckets.length) { container.append(CS.el("p", {class: "muted", text: CS.T("chart.no_data")})); return; }
    const w = 900, h = opts.height || 160, padL = 40, padB = 22, padT = 6;
    const totals = buckets.map(function (b) { return series.reduce(function (a, sr) { return a + (b[sr.name] || 0); }, 0); });
    const max = Math.max(1, ...totals);
    const bw = (w - padL) / buckets.length;
    const svg = s("svg", {viewBox: "0 0 " + w + " " + h, class: "svgchart", role: "img"});
    svg.append(s("line", {x1: padL, y1: h - padB, x2: w, y2: h - padB, class: "axis"}));
    svg.append(s("text", {x: padL - 4, y: padT + 10, "text-anchor": "end", class: "val"}, CS.fmtNum(max)));
    svg.append(s("text", {x: padL - 4, y: h - padB, "text-anchor": "end", class: "val"}, "0"));
    // the ticks are wall-clock times: the axis names their zone (issue 16 item 5)
    const zone = s("text", {x: 2, y: h - 6, class: "tick zone"}, CS.zoneOffset());
    zone.append(s("title", {}, CS.zoneLabel()));
    svg.append(zone);
    const every = Math.max(1, Math.ceil(buckets.length / 8));
    buckets.forEach(function (b, i) {
      let y = h - padB;
      const x = padL + i * bw;
      const g = s("g", {class: "col"});
      const tip = [CS.fmtDate(b.key)];
      for (const sr of series) {
        const v = b[sr.name] || 0;
        if (!v) continue;
        const ht = (h - padB - padT) * v / max;
        y -= ht;
        g.append(s("rect", {x: x + 1, y: y, width: Math.max(1, bw - 2), height: Math.max(0.5, ht), class: sr.cls || ""}));
        tip.push((sr.label || sr.name) + ": " + CS.fmtNum(v));
      }
      g.append(s("rect", {x: x, y: padT, width: bw, height: h - padB - padT, class: "hit"}));
      g.append(s("title", {}, tip.join("\n")));
      if (opts.onClick) g.addEventListener("click", function () { opts.onClick(b, i); });
      svg.append(g);
      if (i % every === 0) {
        const d = new Date(b.key);
        const zone = CS.displayZone();
        const label = opts.dateOnly ? d.toLocaleDateString(CS.LOCALE, {month: "2-digit", day: "2-digit", timeZone: zone})
          : d.toLocaleString(CS.LOCALE, {month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", timeZone: zone});
        // a label that would run past the right edge ends at it instead (was clipped)
        const tx = x + 2, fits = tx + label.length * TICK_CHAR_W <= w;
        svg.append(s("text", fits ? {x: tx, y: h - 6, class: "tick"} : {x: w - 2, y: h - 6, "text-anchor": "end", class: "tick"}, label));
      }
    });
    container.append(svg);
  }

  // Buckets [{key, count}] from the API (empty ones left out) -> one per step from..to.
  function fill(buckets, fromMs, toMs, stepMs) {
    if (!(stepMs > 0) || !isFinite(fromMs) || !isFinite(toMs) || (toMs - fromMs) / stepMs > 2000) {
      return buckets.map(function (b) { return {key: b.key, n: b.count}; });
    }
    const byTime = new Map(buckets.map(function (b) { return [new Date(b.key).getTime(), b.count]; }));
    const out = [];
    for (let t = Math.floor(fromMs / stepMs) * stepMs; t < toMs; t += stepMs) {
      out.push({key: new Date(t).toISOString(), n: byTime.get(t) || 0});
    }
    return out;
  }
  function stepOf(interval) {
    const m = /^(\d+)([smhdw])$/.exec(interval || "");
    return m ? parseInt(m[1], 10) * {s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3}[m[2]] : 0;
  }

  const TICK_CHAR_W = 6.2;  // upper bound of one character of a 10px tick label, in viewBox units
  function truncate(t, n) { t = String(t); return t.length > n ? t.slice(0, n - 1) + "…" : t; }

  window.Charts = {hbar, columns, fill, stepOf};
})();
