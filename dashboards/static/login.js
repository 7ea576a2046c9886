// Sign in through the API; the answer sets the HttpOnly session cookie.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  const form = document.getElementById("login-form");
  const err = document.getElementById("login-error");
  function nextPath() {
    // Checked by the server (api.security.safe_next); and once more here: same origin only.
    const data = JSON.parse(document.getElementById("page-data").textContent || "{}");
    const n = typeof data.next === "string" ? data.next : "/";
    const u = new URL(n, location.origin);
    return (u.origin === location.origin && n.startsWith("/") && !n.startsWith("//")) ? u.pathname + u.search + u.hash : "/";
  }
  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    err.hidden = true;
    try {
      await CS.api("POST", "/api/v1/auth/login", {username: document.getElementById("username").value,
                                                 password: document.getElementById("password").value});
      location.assign(nextPath());
    } catch (e) {
      err.textContent = e.status === 401 ? CS.T("login.failed") : e.status === 429 ? CS.T("login.throttled") : CS.errorText(e);
      err.hidden = false;
    }
  });
});
