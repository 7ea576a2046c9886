// Playbooks: the library, recent runs with their steps, and runs waiting for approval.
"use strict";
(function () {
  const {T, el, clear, fmtDate, api, can, errorText, toast} = CS;

  function steps(run) {
    const ol = el("ol", {class: "steps"});
    for (const s of run.steps) ol.append(el("li", {class: "step st-" + s.status}, el("strong", {text: s.name}), " (",
      el("code", {text: s.action}), ") ", el("span", {class: "status", text: T("step." + s.status)}),
      s.approved_by ? el("span", {class: "muted small", text: " " + T("playbook.approved_by") + " " + CS.actorName(s.approved_by)}) : null,
      s.would ? el("div", {class: "would", text: CS.msg(s.would_msg, s.would)}) : null, s.error ? el("div", {class: "error", text: CS.msg(s.error_msg, s.error)}) : null));
    return ol;
  }
  function showDetail(run) {
    const box = clear(document.getElementById("run-detail"));
    box.append(el("h3", {text: T("playbook.run_no") + " #" + run.id + " · " + run.playbook + " · "},
      el("span", {class: "status run-" + run.status, id: "run-status", text: T("run." + run.status)})), steps(run));
    for (const a of run.approvals) box.append(el("p", {class: "muted small", text: a.step + ": " + T("decision." + a.decision) + " · " + CS.actorName(a.actor) + " · " + fmtDate(a.time) + (a.comment ? " · " + a.comment : "")}));
  }
  async function decide(run, what, box) {
    // at once: the box says the decision is on its way, its buttons go
    for (const b of box.querySelectorAll("button")) b.disabled = true;
    box.classList.add("deciding");
    box.append(el("p", {class: "muted", text: T(what === "approve" ? "playbook.approving" : "playbook.rejecting")}));
    try {
      const done = await api("POST", "/api/v1/playbook-runs/" + encodeURIComponent(run.id) + "/" + what, {comment: "", wait: true});
      toast(T("playbook.decided") + " · #" + done.id + ": " + T("run." + done.status), done.status !== "succeeded");
      await load();
      showDetail(done);
    } catch (e) { toast(CS.decisionError(e), true); await load(); }
  }
  // Runs changing elsewhere (another person approving, a run starting to wait) arrive
  // over the alert stream; the lists reload at most every half second.
  let reloading = null;
  function live() {
    const es = new EventSource("/api/v1/alerts/stream");
    function later() { if (!reloading) reloading = setTimeout(function () { reloading = null; load(); }, 500); }
    es.addEventListener("run.updated", later);
    es.addEventListener("run.awaiting_approval", function (ev) {
      let r = {};
      try { r = JSON.parse(ev.data); } catch (_) { /* reload anyway */ }
      toast(T("playbook.now_waiting").replace("{id}", String(r.id)).replace("{playbook}", r.playbook || "").replace("{step}", r.current_step || ""));
      later();
    });
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
        ok.addEventListener("click", function () { decide(r, "approve", box); });
        no.addEventListener("click", function () { decide(r, "reject", box); });
        box.append(el("p", {}, ok, " ", no));
      }
      pend.append(box);
    }
    if (!pending.items.length) pend.append(el("p", {class: "muted", text: T("playbooks.none_pending")}));
    const tb = clear(document.getElementById("runs-body"));
    for (const r of runs.items) {
      const open = el("button", {type: "button", class: "link", text: "#" + r.id});
      open.addEventListener("click", function () { showDetail(r); });
      tb.append(el("tr", {dataset: {run: String(r.id)}}, el("td", {}, open), el("td", {text: r.playbook}),
        el("td", {}, el("span", {class: "status run-" + r.status, text: T("run." + r.status)})), el("td", {text: CS.label("trigger", r.trigger)}),
        el("td", {text: CS.actorName(r.actor)}), el("td", {}, r.alert_id ? el("a", {href: "/alerts/" + encodeURIComponent(r.alert_id), text: "#" + r.alert_id}) : null),
        el("td", {text: r.dry_run ? T("common.yes") : ""}), el("td", {text: fmtDate(r.created_at)})));
    }
    if (!runs.items.length) tb.append(el("tr", {}, el("td", {colspan: 8, class: "muted", text: T("playbooks.no_runs")})));
    const lib = clear(document.getElementById("library-body"));
    for (const p of pbs) {
      const trig = Object.keys(p.triggers || {}).join(", ");
      lib.append(el("tr", {}, el("td", {}, el("code", {text: p.name})), el("td", {text: CS.PAGE.lang === "vi" && p.title_vi ? p.title_vi : p.title}), el("td", {text: trig}),
        el("td", {text: p.steps.map(function (s) { return s.name; }).join(" → ")})));
    }
    document.body.dataset.loaded = "1";
  }
  document.addEventListener("DOMContentLoaded", function () { load().then(live); });
})();
