// Assets at risk, folded from open alerts (no asset inventory API exists yet).
"use strict";
(function () {
  const {T, el, clear, fmtNum, fmtDate, api, can, errorText, toast} = CS;
  document.addEventListener("DOMContentLoaded", async function () {
    let o;
    try { o = await api("GET", "/api/v1/console/overview?hours=24"); } catch (e) { toast(errorText(e), true); return; }
    Charts.hbar(document.getElementById("chart-assets"), o.top_assets.map(function (a) {
      return {label: a.asset, value: a.risk, href: "/alerts?status=new&status=acknowledged&status=in_progress" +
        (a.host ? "&host=" + encodeURIComponent(a.host) : "")};
    }), {labelWidth: 200});
    const tb = clear(document.getElementById("assets-body"));
    for (const a of o.top_assets) {
      const field = a.asset_id ? "citysoc.asset.id" : a.host ? "host.name" : "source.ip";
      tb.append(el("tr", {}, el("td", {text: a.asset_id || ""}), el("td", {text: a.host || ""}), el("td", {text: a.ip || ""}),
        el("td", {text: a.center || ""}), el("td", {text: a.criticality === null ? "" : a.criticality}),
        el("td", {text: fmtNum(a.alerts)}), el("td", {text: fmtNum(a.risk)}), el("td", {text: fmtDate(a.last_seen)}),
        el("td", {}, can("events:read") ? el("a", {href: CS.pivotHref(field, a.asset), text: T("asset.events")}) : null)));
    }
    if (!o.top_assets.length) tb.append(el("tr", {}, el("td", {colspan: 9, class: "muted", text: T("chart.no_data")})));
    document.getElementById("scan-note").textContent = T("overview.scan_note").replace("{n}", fmtNum(o.scanned)).replace("{limit}", fmtNum(o.scan_limit));
    document.body.dataset.loaded = "1";
  });
})();
