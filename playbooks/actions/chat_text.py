"""Chat text escaped per channel: log content must reach people as text, never as markup.

A webhook step's ``text`` is rendered from a template whose holes are filled from alerts,
and alerts come from unauthenticated log lines: a syslog datagram can carry
``<!channel>`` (Slack pages everyone), ``[click](http://evil.example)`` (a link under a
harmless label), ``<at>`` tags or ``@everyone``. So ``text`` is plain text by contract
and :func:`chat_text` makes it so for each format before it is posted:

* ``slack``: ``&``, ``<`` and ``>`` become ``&amp;``, ``&lt;``, ``&gt;`` (Slack's own
  escaping: no ``<!channel>``, ``<@U123>`` or ``<url|label>`` survives) and the payload
  turns ``mrkdwn`` off, so ``*``, ``_``, ``~`` and backticks show as typed.
* ``teams``: the MessageCard text is Markdown with some HTML: HTML is escaped and every
  Markdown control character is backslash-escaped.
* ``telegram``: sent without ``parse_mode`` (no Markdown or HTML is interpreted) and
  without link previews (Telegram would fetch an attacker's URL).
* every chat format: an ``@`` that starts a mention (``@channel``, ``@here``,
  ``@everyone``, ``@all``, ``@username``) gets a WORD JOINER (U+2060) after it, which
  reads the same and notifies no one. E-mail addresses (``@`` after a letter) are kept.

``generic`` targets (a center's own endpoint, a ticketing system) receive the text
unchanged, as JSON data: they are not chat clients and render nothing.

Example::

    chat_text("slack", "brute force from <!channel> *admin*")
    # 'brute force from &lt;!channel&gt; *admin*'
"""
from __future__ import annotations

import re

__all__ = ["CHAT_FORMATS", "chat_text", "neutralise_mentions"]

CHAT_FORMATS = ("slack", "teams", "telegram")
"""Webhook formats read by people in a chat client (``generic`` is data for a program)."""

_WORD_JOINER = "\u2060"
_MENTION = re.compile(r"(?<![\w.+-])@(?=[\w\u00c0-\uffff])")
"""An ``@`` starting a word (not one inside ``user@host``)."""
_TEAMS_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+!|~>-])")


def neutralise_mentions(text: str) -> str:
    """``@everyone`` -> ``@\u2060everyone``: looks the same, mentions no one."""
    return _MENTION.sub("@" + _WORD_JOINER, text)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def chat_text(fmt: str, text: str) -> str:
    """``text`` as the plain text it is, written so that the ``fmt`` client shows it as typed."""
    if fmt not in CHAT_FORMATS:
        return text
    text = neutralise_mentions(text)
    if fmt == "slack":
        return _html(text)
    if fmt == "teams":
        return _TEAMS_MARKDOWN.sub(r"\\\1", _html(text))
    return text  # telegram: plain text, no parse_mode
