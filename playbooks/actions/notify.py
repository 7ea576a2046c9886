"""Telling people: ``notify_email`` (SMTP) and ``notify_webhook`` (Slack/Teams/Telegram-style JSON, HMAC-signed).

Webhook targets are named in settings (``playbooks.webhooks.<name>``: url, secret,
format), so a playbook can only post where an administrator allowed it. Each POST
carries ``X-Citysoc-Timestamp: <unix seconds>`` and
``X-Citysoc-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``: receivers
recompute it with the shared secret and reject old timestamps, so a captured request
cannot be replayed later.
"""
from __future__ import annotations

import hashlib
import hmac
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import httpx
import orjson

from core.messages import Message
from playbooks.actions.base import Action, ActionContext, ActionError, Param
from playbooks.actions.chat_text import chat_text, neutralise_mentions

__all__ = ["NotifyEmail", "NotifyWebhook", "sign", "SIGNATURE_HEADER", "TIMESTAMP_HEADER"]

SIGNATURE_HEADER = "X-Citysoc-Signature"
TIMESTAMP_HEADER = "X-Citysoc-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` over ``timestamp + "." + body`` (what receivers verify)."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class NotifyEmail(Action):
    name = "notify_email"
    description = "Send a plain-text e-mail through the configured SMTP server."
    inputs = {"to": Param("emails", required=False, doc="recipients; default playbooks.smtp.default_to"),
              "subject": Param("line", doc="one line"),
              "body": Param("str")}
    outputs = {"message_id": "Message-ID header of the mail", "recipients": "who it was sent to"}

    def _recipients(self, ctx: ActionContext, to: list[str] | None) -> list[str]:
        rcpt = to or list(ctx.settings.smtp.default_to)
        if not rcpt:
            raise ActionError("no recipients: give `to:` in the step or set playbooks.smtp.default_to")
        return rcpt

    def run(self, ctx: ActionContext, *, subject: str, body: str, to: list[str] | None = None) -> dict[str, Any]:
        s = ctx.settings.smtp
        rcpt = self._recipients(ctx, to)
        msg = EmailMessage()
        msg["From"] = s.sender
        msg["To"] = ", ".join(rcpt)
        msg["Subject"] = subject[:250]
        msg["Message-ID"] = make_msgid(domain="citysoc")
        msg["X-Citysoc-Run"] = str(ctx.run_id)
        msg.set_content(body)
        try:
            with smtplib.SMTP(s.host, s.port, timeout=ctx.timeout) as smtp:
                if s.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.username:
                    smtp.login(s.username, s.password or "")
                refused = smtp.send_message(msg, from_addr=s.sender, to_addrs=rcpt)
        except (OSError, smtplib.SMTPException) as exc:
            raise ActionError(Message("msg.email.failed", host=s.host, port=s.port, error=str(exc))) from None
        if refused:
            raise ActionError(f"SMTP server refused recipients: {', '.join(refused)}")
        return {"message_id": msg["Message-ID"], "recipients": rcpt}

    def describe(self, ctx: ActionContext, *, subject: str, body: str, to: list[str] | None = None) -> str:
        s = ctx.settings.smtp
        rcpt = ", ".join(self._recipients(ctx, to))
        return Message("msg.email.would_send", to=rcpt, host=s.host, port=s.port, subject=repr(subject), n=len(body))


class NotifyWebhook(Action):
    name = "notify_webhook"
    description = "POST a signed JSON message to a named webhook target (chat channel, ticketing, a center's endpoint)."
    inputs = {"target": Param("line", doc="name under playbooks.webhooks"),
              "text": Param("str", doc="plain text: escaped for the target's chat format, markup is shown as typed"),
              "fields": Param("dict", required=False, default={}, doc="extra key/values (generic format)")}
    outputs = {"status": "HTTP status of the answer", "target": "target name"}

    def _target(self, ctx: ActionContext, target: str) -> Any:
        t = ctx.settings.webhooks.get(target)
        if t is None:
            raise ActionError(f"unknown webhook target {target!r}; configured: "
                              f"{', '.join(ctx.settings.webhooks) or 'none (set playbooks.webhooks)'}")
        return t

    @staticmethod
    def payload(fmt: str, text: str, fields: dict[str, Any], ctx: ActionContext, chat_id: str | None) -> dict[str, Any]:
        """The JSON body for ``fmt``; chat formats get ``text`` escaped as plain text
        (:mod:`playbooks.actions.chat_text`: log content must not page a channel or hide a link)."""
        shown = chat_text(fmt, text)
        if fmt == "slack":
            return {"text": shown, "mrkdwn": False}
        if fmt == "teams":
            return {"@type": "MessageCard", "@context": "https://schema.org/extensions",
                    "summary": neutralise_mentions(text[:80]), "text": shown}
        if fmt == "telegram":
            return {"chat_id": chat_id, "text": shown, "disable_web_page_preview": True}
        return {"text": text, "fields": fields, "playbook": ctx.playbook, "run_id": ctx.run_id, "step": ctx.step}

    def run(self, ctx: ActionContext, *, target: str, text: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
        t = self._target(ctx, target)
        body = orjson.dumps(self.payload(t.format, text, fields or {}, ctx, t.chat_id))
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: ts, "User-Agent": "citysoc-playbooks"}
        if t.secret:
            headers[SIGNATURE_HEADER] = sign(t.secret, ts, body)
        try:
            r = httpx.post(t.url, content=body, headers=headers, timeout=ctx.timeout, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise ActionError(f"webhook {target!r} unreachable: {exc}") from None
        if r.status_code >= 300:
            raise ActionError(f"webhook {target!r} answered HTTP {r.status_code}: {r.text[:200]}")
        return {"status": r.status_code, "target": target}

    def describe(self, ctx: ActionContext, *, target: str, text: str, fields: dict[str, Any] | None = None) -> str:
        t = self._target(ctx, target)
        return Message("msg.webhook.would_post", format=t.format, n=len(text), target=repr(target), url=t.url,
                       signed=Message("msg.webhook.signed") if t.secret else Message("msg.webhook.unsigned"))
