// Search: Lucene query bar, time picker, histogram, expandable results, a field sidebar
// with top values (click to filter). The URL holds q/from/to so searches can be shared.
"use strict";
(function () {
  const {T, el, clear, fmtNum, fmtDate, api, errorText, quoteValue} = CS;
  const PAGE_SIZE = 50;
  let offset = 0;
  let lastHits = [];

  function flatten(obj, prefix, out) {
    for (const [k, v] of Object.entries(obj || {})) {
      const key = prefix ? prefix + "." + k : k;
      if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, key, out);
      else out[key] = v;
    }
    return out;
  }

  function bounds() {
    const r = document.getElementById("range").value;
    if (r === "custom") {
      const f = document.getElementById("from").value, t = document.getElementById("to").value;
      return {from: f ? CS.fromZoneInput(f) : "", to: t ? CS.fromZoneInput(t) : ""};
    }
    return {from: r, to: ""};
  }
  // [startMs, endMs] of the chosen range, null for "all time".
  function rangeMs(b) {
    const now = Date.now();
    const m = /^now-(\d+)([mhd])$/.exec(b.from || "");
    if (m) return [now - parseInt(m[1], 10) * {m: 60e3, h: 3600e3, d: 86400e3}[m[2]], now];
    if (b.from) return [new Date(b.from).getTime(), b.to ? new Date(b.to).getTime() : now];
    return null;
  }
  function intervalFor(b) {
    const now = Date.now();
    let start = null;
    const m = /^now-(\d+)([mhd])$/.exec(b.from || "");
    if (m) start = now - parseInt(m[1], 10) * {m: 60e3, h: 3600e3, d: 86400e3}[m[2]];
    else if (b.from) start = new Date(b.from).getTime();
    const end = b.to ? new Date(b.to).getTime() : now;
    if (start === null) return "1d";
    const span = end - start;
    return span <= 3600e3 ? "1m" : span <= 6 * 3600e3 ? "5m" : span <= 2 * 86400e3 ? "1h" : span <= 31 * 86400e3 ? "6h" : "1d";
  }

  // The histogram; over "all time" the interval narrows until the bars say something
  // (a day, then an hour, then five minutes) when the events span only a few buckets.
  async function histogram(base, b) {
    let interval = intervalFor(b);
    let buckets = await api("GET", "/api/v1/events/histogram?" + base + "&interval=" + interval);
    if (!b.from) {
      for (const finer of ["1h", "5m"]) {
        if (buckets.length > 3) break;
        const next = await api("GET", "/api/v1/events/histogram?" + base + "&interval=" + finer);
        if (next.length > 2000) break;
        interval = finer;
        buckets = next;
      }
    }
    return {buckets: buckets, interval: interval};
  }

  function readUrl() {
    const p = new URLSearchParams(location.search);
    document.getElementById("q").value = p.get("q") || "";
    const from = p.get("from") || "", to = p.get("to") || "";
    const sel = document.getElementById("range");
    if (from && !to && Array.from(sel.options).some(function (o) { return o.value === from; })) sel.value = from;
    else if (from || to) {
      sel.value = "custom";
      document.getElementById("custom-range").hidden = false;
      if (from) document.getElementById("from").value = localInput(from);
      if (to) document.getElementById("to").value = localInput(to);
    } else sel.value = "";
    offset = Math.max(0, parseInt(p.get("offset") || "0", 10) || 0);
  }
  // The custom range is typed in the display zone (site zone unless chosen otherwise), seconds kept.
  function localInput(iso) { return CS.toZoneInput(iso); }

  function summary(doc) {
    const f = flatten(doc, "", {});
    const parts = [];
    for (const k of ["event.dataset", "event.action", "event.outcome", "host.name", "user.name", "source.ip", "destination.ip"]) {
      if (f[k] !== undefined && f[k] !== null && f[k] !== "") parts.push(el("span", {class: "kv-inline"}, el("b", {text: k + ": "}), String(f[k])));
    }
    if (doc.message) parts.push(el("span", {class: "msg", text: String(doc.message).slice(0, 400)}));
    return parts;
  }

  function docTable(doc) {
    const f = flatten(doc, "", {});
    const tb = el("tbody");
    for (const k of Object.keys(f).sort()) {
      const v = f[k];
      const shown = Array.isArray(v) ? JSON.stringify(v) : String(v);
      const add = el("button", {type: "button", class: "mini", title: T("search.filter_for"), text: "+"});
      add.addEventListener("click", function () { addFilter(k, Array.isArray(v) ? v[0] : v, false); });
      const not = el("button", {type: "button", class: "mini", title: T("search.filter_out"), text: "−"});
      not.addEventListener("click", function () { addFilter(k, Array.isArray(v) ? v[0] : v, true); });
      tb.append(el("tr", {}, el("td", {}, add, not), el("th", {text: k}), el("td", {text: shown})));
    }
    return el("table", {class: "doc-table"}, tb);
  }

  function addFilter(field, value, negate) {
    const q = document.getElementById("q");
    const clause = (negate ? "NOT " : "") + field + ":" + quoteValue(value);
    const cur = q.value.trim();
    q.value = (!cur || cur === "*") ? clause : "(" + cur + ") AND " + clause;
    offset = 0;
    run();
  }

  function fieldsSidebar(hits) {
    const counts = {};
    for (const h of hits) for (const k of Object.keys(flatten(h, "", {}))) counts[k] = (counts[k] || 0) + 1;
    const ul = clear(document.getElementById("field-list"));
    const keys = Object.keys(counts).sort().slice(0, 120);
    for (const k of keys) {
      const btn = el("button", {type: "button", class: "link field", text: k});
      const vals = el("ul", {class: "values", hidden: true});
      btn.addEventListener("click", async function () {
        if (!vals.hidden) { vals.hidden = true; return; }
        clear(vals).append(el("li", {class: "muted", text: "…"}));
        vals.hidden = false;
        const b = bounds();
        try {
          const buckets = await api("GET", "/api/v1/events/terms?field=" + encodeURIComponent(k) + "&size=5&q=" +
            encodeURIComponent(document.getElementById("q").value.trim() || "*") +
            (b.from ? "&from=" + encodeURIComponent(b.from) : "") + (b.to ? "&to=" + encodeURIComponent(b.to) : ""));
          clear(vals);
          for (const bk of buckets) {
            const v = el("button", {type: "button", class: "link value", text: String(bk.key)});
            v.addEventListener("click", function () { addFilter(k, bk.key, false); });
            vals.append(el("li", {}, v, el("span", {class: "muted small", text: " " + fmtNum(bk.count)})));
          }
          if (!buckets.length) vals.append(el("li", {class: "muted", text: T("search.no_values")}));
        } catch (e) { clear(vals).append(el("li", {class: "error", text: errorText(e)})); }
      });
      ul.append(el("li", {}, btn, el("span", {class: "muted small", text: " " + counts[k]}), vals));
    }
  }

  async function run() {
    const q = document.getElementById("q").value.trim() || "*";
    const b = bounds();
    const p = new URLSearchParams();
    if (q !== "*") p.set("q", q);
    if (b.from) p.set("from", b.from);
    if (b.to) p.set("to", b.to);
    if (offset) p.set("offset", String(offset));
    history.replaceState(null, "", "/search" + (p.toString() ? "?" + p.toString() : ""));
    const base = "q=" + encodeURIComponent(q) + (b.from ? "&from=" + encodeURIComponent(b.from) : "") + (b.to ? "&to=" + encodeURIComponent(b.to) : "");
    const err = document.getElementById("search-error");
    err.hidden = true;
    try {
      const [res, histo] = await Promise.all([
        api("GET", "/api/v1/events/search?" + base + "&limit=" + PAGE_SIZE + "&offset=" + offset),
        histogram(base, b)]);
      const hist = histo.buckets;
      lastHits = res.hits;
      document.getElementById("hits-total").textContent = T("search.hits").replace("{n}", fmtNum(res.total));
      document.getElementById("took").textContent = fmtNum(Math.round(res.took_ms)) + " ms";
      const iv = histo.interval;
      let span = rangeMs(b);
      if (!span && hist.length) span = [new Date(hist[0].key).getTime(), new Date(hist[hist.length - 1].key).getTime() + Charts.stepOf(iv)];
      Charts.columns(document.getElementById("histogram"),
                     span ? Charts.fill(hist, span[0], span[1], Charts.stepOf(iv)) : hist.map(function (x) { return {key: x.key, n: x.count}; }),
                     [{name: "n", cls: "hist", label: T("search.events")}], {height: 120, onClick: function (bk) {
                       // Zoom into the clicked bar: its own interval becomes the time range.
                       const start = new Date(bk.key).getTime();
                       const ms = parseInt(iv, 10) * {m: 60e3, h: 3600e3, d: 86400e3}[iv.slice(-1)];
                       document.getElementById("range").value = "custom";
                       document.getElementById("custom-range").hidden = false;
                       document.getElementById("from").value = localInput(new Date(start).toISOString());
                       document.getElementById("to").value = localInput(new Date(start + ms).toISOString());
                       offset = 0;
                       run();
                     }});
      const body = clear(document.getElementById("results-body"));
      for (const doc of res.hits) {
        const detail = el("tr", {class: "detail", hidden: true}, el("td", {colspan: 3}, docTable(doc)));
        const toggle = el("button", {type: "button", class: "mini expand", "aria-label": T("search.expand"), text: "▸"});
        toggle.addEventListener("click", function () { detail.hidden = !detail.hidden; toggle.textContent = detail.hidden ? "▸" : "▾"; });
        body.append(el("tr", {class: "hit"}, el("td", {}, toggle), el("td", {class: "time", text: fmtDate(doc["@timestamp"])}),
          el("td", {}, ...summary(doc))), detail);
      }
      if (!res.hits.length) body.append(el("tr", {}, el("td", {colspan: 3, class: "muted", text: T("search.no_hits")})));
      document.getElementById("page-info").textContent = T("pager.range").replace("{from}", fmtNum(res.hits.length ? offset + 1 : 0))
        .replace("{to}", fmtNum(offset + res.hits.length)).replace("{total}", fmtNum(res.total));
      document.getElementById("prev").disabled = offset === 0;
      document.getElementById("next").disabled = offset + res.hits.length >= res.total;
      fieldsSidebar(res.hits);
      document.body.dataset.loaded = "1";
    } catch (e) {
      // the error is the whole answer: no count, no "no events", no stale rows of the last query
      err.textContent = T("search.error") + ": " + errorText(e);
      err.hidden = false;
      lastHits = [];
      for (const id of ["results-body", "histogram", "field-list"]) clear(document.getElementById(id));
      for (const id of ["hits-total", "took", "page-info"]) document.getElementById(id).textContent = "";
      document.getElementById("prev").disabled = document.getElementById("next").disabled = true;
      document.body.dataset.loaded = "1";
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    readUrl();
    document.getElementById("search-form").addEventListener("submit", function (ev) { ev.preventDefault(); offset = 0; run(); });
    document.getElementById("range").addEventListener("change", function (ev) {
      document.getElementById("custom-range").hidden = ev.target.value !== "custom";
      if (ev.target.value !== "custom") { offset = 0; run(); }
    });
    document.getElementById("prev").addEventListener("click", function () { offset = Math.max(0, offset - PAGE_SIZE); run(); });
    document.getElementById("next").addEventListener("click", function () { offset += PAGE_SIZE; run(); });
    run();
  });
})();
