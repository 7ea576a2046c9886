"""WS-Discovery (UDP 3702): how ONVIF cameras announce themselves and answer probes.

A ``Probe`` asks "which NetworkVideoTransmitters are here"; ``ProbeMatches``,
``Hello`` and ``Bye`` answer with the device's types, service addresses (``XAddrs``,
the ONVIF device service URLs) and scopes (``onvif://www.onvif.org/hardware/...``).
For the camera operations center this is an inventory feed: a camera answering from an
unexpected address, or a probe from a host that is not the VMS, stands out.

The XML comes from the network, so it is parsed with defusedxml (no entity expansion,
no external DTDs).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from defusedxml import ElementTree as SafeET

__all__ = ["parse_ws_discovery", "WSDiscoveryError"]

_ONVIF_SCOPE = "onvif://www.onvif.org/"
_MAX_ITEMS = 32


class WSDiscoveryError(ValueError):
    """A datagram on UDP 3702 that is not a WS-Discovery SOAP envelope."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_ws_discovery(payload: bytes) -> dict[str, Any]:
    """Fields under ``citysoc.network.wsd`` (and ``.onvif`` from ONVIF scopes)."""
    try:
        root = SafeET.fromstring(payload)
    except Exception as exc:  # defusedxml raises several types; all mean "not usable XML"
        raise WSDiscoveryError(f"not a well-formed SOAP envelope: {exc}") from exc
    action = None
    types: list[str] = []
    xaddrs: list[str] = []
    scopes: list[str] = []
    endpoint = None
    message_id = None
    relates_to = None
    for el in root.iter():
        name = _local(el.tag) if isinstance(el.tag, str) else ""
        text = (el.text or "").strip()
        if not text:
            continue
        if name == "Action" and action is None:
            action = text.rsplit("/", 1)[-1]
        elif name == "Types":
            types.extend(text.split())
        elif name == "XAddrs":
            xaddrs.extend(text.split())
        elif name == "Scopes":
            scopes.extend(text.split())
        elif name == "Address" and endpoint is None:
            endpoint = text
        elif name == "MessageID":
            message_id = text
        elif name == "RelatesTo":
            relates_to = text
    if action is None:
        raise WSDiscoveryError("SOAP envelope without a WS-Addressing Action header")
    wsd: dict[str, Any] = {"action": action}
    if types:
        wsd["types"] = types[:_MAX_ITEMS]
    if xaddrs:
        wsd["xaddrs"] = xaddrs[:_MAX_ITEMS]
    if scopes:
        wsd["scopes"] = scopes[:_MAX_ITEMS]
    if endpoint:
        wsd["endpoint"] = endpoint
    if message_id:
        wsd["message_id"] = message_id
    if relates_to:
        wsd["relates_to"] = relates_to
    onvif: dict[str, Any] = {}
    for scope in scopes:
        if scope.startswith(_ONVIF_SCOPE):
            key, _, value = scope[len(_ONVIF_SCOPE):].partition("/")
            if key in ("hardware", "name", "location", "type", "Profile", "model", "serial") and value:
                value = unquote(value)
                if key in ("type", "Profile", "location"):
                    onvif.setdefault(key.lower(), []).append(value)
                else:
                    onvif.setdefault(key.lower(), value)
    out: dict[str, Any] = {"wsd": wsd}
    if onvif:
        out["onvif"] = onvif
    return out
