// Overview: open alerts by level and center, over time, top rules and assets, pipeline health.
"use strict";
(function () {
  const {T, el, clear, fmtNum, fmtDate, api, can, errorText, toast} = CS;
  const LEVELS = ["critical", "high", "medium", "low", "informational"];
  let lastHealth = null;

  async function loadOverview() {
    const o = await api("GET", "/api/v1/console/overview?hours=24");
    document.getElementById("open-total").textContent = fmtNum(o.open_total);
    Charts.hbar(document.getElementById("chart-level"), LEVELS.map(function (l) {
      return {label: T("level." + l), value: o.open_by_level[l] || 0, cls: "lvl-" + l,
              href: "/alerts?status=new&status=acknowledged&status=in_progress&level=" + l};
    }));
    Charts.hbar(document.getElementById("chart-center"), o.by_center.map(function (c) {
      return {label: c.key ? CS.label("center", c.key) : T("center.none"), value: c.count,
              href: c.key ? "/alerts?status=new&status=acknowledged&status=in_progress&center=" + encodeURIComponent(c.key) : null};
    }));
    Charts.columns(document.getElementById("chart-time"), o.over_time,
      LEVELS.slice().reverse().map(function (l) { return {name: l, cls: "lvl-" + l, label: T("level." + l)}; }));
    Charts.hbar(document.getElementById("chart-rules"), o.top_rules.map(function (r) {
      return {label: CS.ruleTitle(r.rule_id, r.title, r.title_msg), value: r.count, cls: "lvl-" + r.level,
              href: "/alerts?status=new&status=acknowledged&status=in_progress&rule_id=" + encodeURIComponent(r.rule_id)};
    }), {labelWidth: 200});
    const tb = clear(document.getElementById("top-assets"));
    for (const a of o.top_assets) {
      const field = a.asset_id ? "asset.id" : a.host ? "host.name" : "source.ip";
      tb.append(el("tr", {},
        el("td", {}, can("events:read") ? el("a", {href: CS.pivotHref(field, a.asset), text: a.asset}) : a.asset),
        el("td", {text: CS.label("center", a.center)}), el("td", {text: fmtNum(a.alerts)}), el("td", {text: fmtNum(a.risk)})));
    }
    if (!o.top_assets.length) tb.append(el("tr", {}, el("td", {colspan: 4, class: "muted", text: T("chart.no_data")})));
    document.getElementById("scan-note").textContent = T("overview.scan_note").replace("{n}", fmtNum(o.scanned)).replace("{limit}", fmtNum(o.scan_limit));
  }

  async function loadHealth() {
    if (!can("metrics:read")) { document.getElementById("health-card").hidden = true; return; }
    const h = await api("GET", "/api/v1/console/health");
    const prev = lastHealth;
    lastHealth = h;
    const tb = clear(document.getElementById("health-rows"));
    for (const st of h.stages) {
      let rate = "…";
      if (prev) {
        const p = prev.stages.find(function (x) { return x.name === st.name; });
        const dt = h.time - prev.time;
        if (p && dt > 0) rate = fmtNum(Math.round((st.received - p.received) / dt * 10) / 10) + " /s";
      }
      const bad = st.errors > 0 || st.dropped > 0;
      tb.append(el("tr", {class: bad ? "warn" : ""},
        el("td", {text: st.name}), el("td", {text: T("health.kind_" + st.kind)}), el("td", {text: fmtNum(st.received)}),
        el("td", {text: rate}), el("td", {text: fmtNum(st.errors)}), el("td", {text: fmtNum(st.dropped)}),
        el("td", {text: st.queue_capacity ? fmtNum(st.queue_depth) + " / " + fmtNum(st.queue_capacity) : ""}),
        el("td", {text: st.lag_seconds !== undefined ? st.lag_seconds.toFixed(2) + " s" : ""})));
    }
    document.getElementById("health-summary").textContent =
      T("health.summary").replace("{ready}", h.ready ? T("health.ready") : T("health.starting"))
        .replace("{dead}", fmtNum(h.dead_letters)).replace("{uptime}", fmtNum(Math.round(h.uptime_s)));
  }

  async function refresh() {
    try { await Promise.all([loadOverview(), loadHealth()]); }
    catch (e) { toast(errorText(e), true); }
  }
  document.addEventListener("DOMContentLoaded", function () {
    refresh();
    setTimeout(function () { loadHealth().catch(function () {}); }, 2000);  // a first rate soon
    setInterval(refresh, 10000);
  });
})();
