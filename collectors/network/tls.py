"""TLS ClientHello to ECS ``tls.*``: the server name (SNI), offered version, JA3.

The SNI is the one name a TLS client says in clear text; for a camera that should talk
only to its NVR, a ClientHello naming anything else is worth an alert. JA3 (an MD5 over
the offered version, ciphers, extensions, curves and point formats, GREASE values
removed) fingerprints the client software and is what threat intel feeds publish.
"""
from __future__ import annotations

import hashlib
import struct
from typing import Any

__all__ = ["client_hello_complete", "parse_client_hello", "TLSError", "looks_like_client_hello"]

_u16 = struct.Struct("!H").unpack_from
_VERSIONS = {0x0300: "3.0", 0x0301: "1.0", 0x0302: "1.1", 0x0303: "1.2", 0x0304: "1.3"}


class TLSError(ValueError):
    """Bytes that start like a ClientHello but do not parse as one."""


def _grease(v: int) -> bool:
    return (v & 0x0F0F) == 0x0A0A and (v >> 8) == (v & 0xFF)


def looks_like_client_hello(buf: bytes | bytearray) -> bool:
    """A TLS handshake record (0x16, version 3.x) whose first message is a ClientHello (1)."""
    return len(buf) >= 6 and buf[0] == 0x16 and buf[1] == 3 and buf[5] == 1


def client_hello_complete(buf: bytes | bytearray) -> bool:
    """True once the records in ``buf`` carry the whole ClientHello handshake message."""
    if len(buf) < 9:
        return False
    needed = 4 + int.from_bytes(buf[6:9], "big")
    have = 0
    i = 0
    while i + 5 <= len(buf) and buf[i] == 0x16:
        ln = _u16(buf, i + 3)[0]
        have += min(ln, len(buf) - i - 5)
        i += 5 + ln
    return have >= needed


def parse_client_hello(buf: bytes | bytearray) -> dict[str, Any]:
    """ECS ``tls`` fields from a ClientHello, possibly spread over several records."""
    # Join the handshake bytes of consecutive records (a post-quantum hello spans two).
    hs = bytearray()
    i = 0
    while i + 5 <= len(buf) and buf[i] == 0x16:
        ln = _u16(buf, i + 3)[0]
        hs += buf[i + 5:i + 5 + ln]
        i += 5 + ln
    if len(hs) < 4 or hs[0] != 1:
        raise TLSError("not a ClientHello handshake message")
    body = bytes(hs[4:4 + int.from_bytes(hs[1:4], "big")])
    try:
        legacy = _u16(body, 0)[0]
        off = 34
        off += 1 + body[off]  # session id
        clen = _u16(body, off)[0]
        ciphers = [c for c in struct.unpack_from(f"!{clen // 2}H", body, off + 2) if not _grease(c)]
        off += 2 + clen
        off += 1 + body[off]  # compression methods
        exts: list[int] = []
        curves: list[int] = []
        points: list[int] = []
        sni = None
        alpn: list[str] = []
        supported: list[int] = []
        if off + 2 <= len(body):
            elen = _u16(body, off)[0]
            off += 2
            stop = min(off + elen, len(body))
            while off + 4 <= stop:
                etype, ln = struct.unpack_from("!HH", body, off)
                data = body[off + 4:off + 4 + ln]
                off += 4 + ln
                if _grease(etype):
                    continue
                exts.append(etype)
                if etype == 0 and len(data) >= 5 and data[2] == 0:
                    nlen = _u16(data, 3)[0]
                    sni = data[5:5 + nlen].decode("ascii", "backslashreplace")
                elif etype == 10 and len(data) >= 2:
                    n = _u16(data, 0)[0] // 2
                    curves = [c for c in struct.unpack_from(f"!{n}H", data, 2) if not _grease(c)]
                elif etype == 11 and data:
                    points = list(data[1:1 + data[0]])
                elif etype == 16 and len(data) >= 2:
                    j = 2
                    while j < len(data):
                        alpn.append(data[j + 1:j + 1 + data[j]].decode("ascii", "backslashreplace"))
                        j += 1 + data[j]
                elif etype == 43 and data:
                    supported = [v for v in struct.unpack_from(f"!{data[0] // 2}H", data, 1) if not _grease(v)]
    except (struct.error, IndexError) as exc:
        raise TLSError(f"truncated ClientHello: {exc}") from exc
    ja3_str = "{},{},{},{},{}".format(legacy, "-".join(map(str, ciphers)), "-".join(map(str, exts)),
                                     "-".join(map(str, curves)), "-".join(map(str, points)))
    best = max(supported) if supported else legacy
    tls: dict[str, Any] = {
        "version_protocol": "tls",
        "client": {"ja3": hashlib.md5(ja3_str.encode(), usedforsecurity=False).hexdigest()},
    }
    if best in _VERSIONS:
        tls["version"] = _VERSIONS[best]
    if sni:
        tls["client"]["server_name"] = sni
    out: dict[str, Any] = {"tls": tls}
    if alpn:  # ECS has no field for the client's ALPN offer
        out["citysoc"] = {"network": {"tls": {"alpn": alpn}}}
    return out
