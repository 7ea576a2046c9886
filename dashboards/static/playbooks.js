// Playbooks: the library, recent runs with their steps, and runs waiting for approval.
"use strict";
(function () {
  const {T, el, clear, fmtDate, api, can, errorText, toast} = CS;

  function steps(run) {
    const ol = el("ol", {class: "steps"});
    for (const s of run.steps) ol.append(el("li", {class: "step st-" + s.status}, el("strong", {text: s.name}), " (",
      el("code", {text: s.action}), ") ", el("span", {class: "status", text: T("step." + s.status)}),
      s.approved_by ? el("span", {class: "muted small", text: " " + T("playbook.approved_by") + " " + s.approved_by}) : null,
      s.would ? el("div", {class: "would", text: s.would}) : null, s.error ? el("div", {class: "error", text: s.error}) : null));
    return ol;
  }
  function showDetail(run) {
    const box = clear(document.getElementById("run-detail"));
    box.append(el("h3", {text: T("playbook.run_no") + " #" + run.id + " · " + run.playbook}), steps(run));
    for (const a of run.approvals) box.append(el("p", {class: "muted small", text: a.step + ": " + T("decision." + a.decision) + " · " + a.actor + " · " + fmtDate(a.time) + (a.comment ? " · " + a.comment : "")}));
  }
  async function decide(run, what) {
    try { await api("POST", "/api/v1/playbook-runs/" + encodeURIComponent(run.id) + "/" + what, {comment: "", wait: true}); toast(T("playbook.decided")); await load(); }
    catch (e) { toast(errorText(e), true); }
  }
  async function load() {
    let pbs, runs, pending;
    try {
      [pbs, runs, pending] = await Promise.all([api("GET", "/api/v1/playbooks"), api("GET", "/api/v1/playbook-runs?limit=50"),
                                               api("GET", "/api/v1/playbook-runs?status=awaiting_approval&limit=100")]);
    } catch (e) {
      const p = document.getElementById("pb-error");
      p.textContent = e.status === 503 ? T("playbook.unavailable") : errorText(e);
      p.hidden = false;
      return;
    }
    const pend = clear(document.getElementById("pending"));
    for (const r of pending.items) {
      const box = el("div", {class: "pending-run", dataset: {run: String(r.id)}},
        el("p", {}, el("strong", {text: "#" + r.id + " " + r.playbook}), " · ", T("playbook.waiting").replace("{step}", r.current_step || ""),
          r.alert_id ? el("a", {href: "/alerts/" + encodeURIComponent(r.alert_id), text: " " + T("playbook.alert") + " #" + r.alert_id}) : null,
          r.approval_expires_at ? el("span", {class: "muted small", text: " · " + T("playbook.expires") + " " + fmtDate(r.approval_expires_at)}) : null),
        steps(r));
      if (can("playbooks:approve")) {
        const ok = el("button", {type: "button", class: "primary", text: T("playbook.approve")});
        const no = el("button", {type: "button", text: T("playbook.reject")});
        ok.addEventListener("click", function () { decide(r, "approve"); });
        no.addEventListener("click", function () { decide(r, "reject"); });
        box.append(el("p", {}, ok, " ", no));
      }
      pend.append(box);
    }
    if (!pending.items.length) pend.append(el("p", {class: "muted", text: T("playbooks.none_pending")}));
    const tb = clear(document.getElementById("runs-body"));
    for (const r of runs.items) {
      const open = el("button", {type: "button", class: "link", text: "#" + r.id});
      open.addEventListener("click", function () { showDetail(r); });
      tb.append(el("tr", {}, el("td", {}, open), el("td", {text: r.playbook}),
        el("td", {}, el("span", {class: "status run-" + r.status, text: T("run." + r.status)})), el("td", {text: CS.label("trigger", r.trigger)}),
        el("td", {text: r.actor}), el("td", {}, r.alert_id ? el("a", {href: "/alerts/" + encodeURIComponent(r.alert_id), text: "#" + r.alert_id}) : null),
        el("td", {text: r.dry_run ? T("common.yes") : ""}), el("td", {text: fmtDate(r.created_at)})));
    }
    if (!runs.items.length) tb.append(el("tr", {}, el("td", {colspan: 8, class: "muted", text: T("playbooks.no_runs")})));
    const lib = clear(document.getElementById("library-body"));
    for (const p of pbs) {
      const trig = Object.keys(p.triggers || {}).join(", ");
      lib.append(el("tr", {}, el("td", {}, el("code", {text: p.name})), el("td", {text: p.title}), el("td", {text: trig}),
        el("td", {text: p.steps.map(function (s) { return s.name; }).join(" → ")})));
    }
    document.body.dataset.loaded = "1";
  }
  document.addEventListener("DOMContentLoaded", load);
})();
