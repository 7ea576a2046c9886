"""LDAP requests (BER) recognised and summarised: bind and search base objects.

Log4Shell's second act is the victim connecting out to an attacker's LDAP server
(often on an odd port such as 1389) and searching for the planted object name; seeing
``ldap`` as the protocol and ``o=reference`` as the base object on an outbound flow
from a web server is the evidence. Only the operation and the DN are read.
"""
from __future__ import annotations

from typing import Any

__all__ = ["parse_ldap_request", "looks_like_ldap"]

_OPS = {0x60: "bind", 0x42: "unbind", 0x63: "search", 0x66: "modify", 0x68: "add", 0x4A: "delete",
        0x77: "extended", 0x61: "bind_response", 0x64: "search_entry", 0x65: "search_done"}


def _len(buf: bytes, off: int) -> tuple[int, int]:
    first = buf[off]
    if first < 0x80:
        return first, off + 1
    n = first & 0x7F
    if n == 0 or n > 4:
        raise ValueError("unsupported BER length")
    return int.from_bytes(buf[off + 1:off + 1 + n], "big"), off + 1 + n


def _op(buf: bytes) -> tuple[int, int, int]:
    """(message id, operation tag, offset of the operation's content)."""
    if len(buf) < 7 or buf[0] != 0x30:
        raise ValueError("not a BER sequence")
    _, off = _len(buf, 1)
    if buf[off] != 0x02:
        raise ValueError("no message id")
    idlen, off2 = _len(buf, off + 1)
    if not 1 <= idlen <= 4:
        raise ValueError("bad message id length")
    msgid = int.from_bytes(buf[off2:off2 + idlen], "big")
    off = off2 + idlen
    tag = buf[off]
    _, content = _len(buf, off + 1)
    return msgid, tag, content


def looks_like_ldap(buf: bytes) -> bool:
    """A BER LDAPMessage with a known application-class operation."""
    try:
        _, tag, _ = _op(buf)
    except (ValueError, IndexError):
        return False
    return tag in _OPS


def parse_ldap_request(buf: bytes) -> dict[str, Any] | None:
    """``{"operation", "message_id", ["base_object"|"bind_dn"]}`` or None if not LDAP."""
    try:
        msgid, tag, off = _op(buf)
        op = _OPS.get(tag)
        if op is None:
            return None
        out: dict[str, Any] = {"operation": op, "message_id": msgid}
        if tag == 0x63 and buf[off] == 0x04:
            ln, o = _len(buf, off + 1)
            out["base_object"] = buf[o:o + min(ln, 4096)].decode("utf-8", "backslashreplace")
        elif tag == 0x60 and buf[off] == 0x02:  # version INTEGER, then name OCTET STRING
            vlen, o = _len(buf, off + 1)
            o += vlen
            if buf[o] == 0x04:
                ln, o2 = _len(buf, o + 1)
                out["bind_dn"] = buf[o2:o2 + min(ln, 1024)].decode("utf-8", "backslashreplace")
        return out
    except (ValueError, IndexError):
        return None
