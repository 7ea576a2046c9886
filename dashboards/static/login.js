// Sign in through the API; the answer sets the HttpOnly session cookie.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  const form = document.getElementById("login-form");
  const err = document.getElementById("login-error");
  function nextPath() {
    const n = new URLSearchParams(location.search).get("next") || "/";
    return (n.startsWith("/") && !n.startsWith("//") && n.indexOf("\\") < 0 && !n.startsWith("/login")) ? n : "/";
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
