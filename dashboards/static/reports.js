// Reports: the alert export (CSV/NDJSON, audited by the API) with its filters as a link.
"use strict";
(function () {
  document.addEventListener("DOMContentLoaded", function () {
    const f = document.getElementById("report-form");
    const a = document.getElementById("report-download");
    function update() {
      const p = new URLSearchParams();
      for (const name of ["format", "status", "level", "from"]) { const v = f.elements[name].value; if (v) p.set(name, v); }
      a.setAttribute("href", "/api/v1/alerts/export?" + p.toString());
    }
    f.addEventListener("change", update);
    update();
    document.body.dataset.loaded = "1";
  });
})();
