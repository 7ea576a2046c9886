"""Dahua DHIP discovery (UDP 37810): DVRs, NVRs and IP cameras describing themselves.

Dahua's "search device" tool multicasts ``DHDiscover.search``; every device answers
``client.notifyDevInfo`` with a JSON description (model, serial, firmware, addresses,
ports). The same replies, spoofed at scale, make a reflection DDoS, which is how they
appear in public captures. The datagram is a 32-byte header (little-endian header
size 32, the magic ``DHIP``, body length at offset 16 and again at 24) then JSON.
"""
from __future__ import annotations

import struct
from typing import Any

import orjson

__all__ = ["parse_dhip", "DHIPError", "is_dhip"]

_HDR = struct.Struct("<I4sIIIIII")
# deviceInfo keys we copy, and the names they get under citysoc.network.dahua.
_DEVICE_KEYS = {
    "DeviceType": "device_type", "DeviceClass": "device_class", "SerialNo": "serial_number",
    "Vendor": "vendor", "Version": "version", "MachineName": "machine_name", "Manufacturer": "manufacturer",
    "HttpPort": "http_port", "HttpsPort": "https_port", "Port": "port", "UdpPort": "udp_port",
    "DeviceName": "device_name", "Init": "initialized", "mac": "mac", "MAC": "mac",
}


class DHIPError(ValueError):
    """A datagram on UDP 37810 that is not a DHIP message."""


def is_dhip(payload: bytes) -> bool:
    return len(payload) >= 32 and payload[4:8] == b"DHIP"


def parse_dhip(payload: bytes) -> dict[str, Any]:
    """Fields under ``citysoc.network.dahua`` from one DHIP datagram."""
    if not is_dhip(payload):
        raise DHIPError("no DHIP magic at byte 4")
    _size, _magic, session, request, length, _r3, _length2, _r4 = _HDR.unpack_from(payload, 0)
    body = payload[32:32 + length] if 0 < length <= len(payload) - 32 else payload[32:]
    body = body.rstrip(b"\x00\r\n ")
    out: dict[str, Any] = {"session_id": session, "request_id": request}
    try:
        # Device names are not always UTF-8 (GBK firmware): keep the record, replace the bytes.
        doc = orjson.loads(body.decode("utf-8", "replace"))
    except orjson.JSONDecodeError as exc:
        raise DHIPError(f"DHIP body is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise DHIPError("DHIP body is JSON but not an object")
    if isinstance(doc.get("method"), str):
        out["method"] = doc["method"]
    params = doc.get("params") if isinstance(doc.get("params"), dict) else {}
    info = params.get("deviceInfo") if isinstance(params.get("deviceInfo"), dict) else {}
    for key, name in _DEVICE_KEYS.items():
        for src in (info, params, doc):
            value = src.get(key)
            if isinstance(value, (str, int, bool)) and value != "":
                out.setdefault(name, value)
    for family, name in (("IPv4Address", "ipv4"), ("IPv6Address", "ipv6")):
        sect = info.get(family)
        if isinstance(sect, dict) and isinstance(sect.get("IPAddress"), str) and sect["IPAddress"]:
            out[name] = sect["IPAddress"].split("/", 1)[0]
    return out
