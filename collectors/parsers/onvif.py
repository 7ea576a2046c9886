"""ONVIF event notifications: SOAP ``wsnt:Notify`` messages carrying ``tt:Message``.

A camera (or a VMS relaying for it) pushes these to a notification consumer, or a
pull-point subscriber writes them out. One record is one ``Notify`` document; its first
``NotificationMessage`` is the event (topic, time, source and data items), and when a
document batches several, all of them are kept in ``onvif.messages`` (tag
``onvif_multiple_messages``).

XML from devices is untrusted: it is parsed with :mod:`defusedxml`, and a document with
a DTD, entity declarations or external references is refused (``ParseError``, so it is
dead-lettered, not expanded). Documents over :data:`MAX_XML_BYTES` are refused too.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element, ParseError as XmlParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from core.events import Event, set_field
from core.protocols import ParseError, RawRecord

from ._app import utcnow
from ._common import add_tag, base_event, categorize, set_timestamp

__all__ = ["OnvifParser", "PARSER", "MAX_XML_BYTES"]

MAX_XML_BYTES = 1 << 20
_WSNT = "{http://docs.oasis-open.org/wsn/b-2}"
_WSA = "{http://www.w3.org/2005/08/addressing}"
_TT = "{http://www.onvif.org/ver10/schema}"


def _items(parent: Element | None) -> dict[str, str]:
    if parent is None:
        return {}
    return {it.get("Name", ""): it.get("Value", "") for it in parent.iter(f"{_TT}SimpleItem")}


def _message(nm: Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    topic = nm.find(f"{_WSNT}Topic")
    if topic is not None and topic.text:
        out["topic"] = topic.text.strip()
    addr = nm.find(f"{_WSNT}ProducerReference/{_WSA}Address")
    if addr is not None and addr.text:
        out["producer"] = addr.text.strip()
    msg = nm.find(f"{_WSNT}Message/{_TT}Message")
    if msg is not None:
        if msg.get("UtcTime"):
            out["utc_time"] = msg.get("UtcTime")
        if msg.get("PropertyOperation"):
            out["property_operation"] = msg.get("PropertyOperation")
        out["source"] = _items(msg.find(f"{_TT}Source"))
        out["key"] = _items(msg.find(f"{_TT}Key"))
        out["data"] = _items(msg.find(f"{_TT}Data"))
    return out


def _truthy(data: dict[str, str]) -> bool | None:
    for value in data.values():
        v = value.strip().lower()
        if v in ("true", "1", "active", "on"):
            return True
        if v in ("false", "0", "inactive", "off"):
            return False
    return None


def _classify(ev: Event, topic: str, data: dict[str, str]) -> None:
    plain = "/".join(part.split(":", 1)[-1] for part in topic.split("/"))
    t = plain.lower()
    state = _truthy(data)
    if "motion" in t:
        categorize(ev, "host", "info", "motion-stopped" if state is False else "motion-detected")
    elif any(k in t for k in ("tamper", "globalscenechange", "imagetooblurry", "imagetoodark", "imagetoobright")):
        categorize(ev, "intrusion_detection", "info", "video-tampering-cleared" if state is False else "video-tampering")
    elif "signalloss" in t or "videoloss" in t:
        categorize(ev, "host", ["info", "error"], "video-restored" if state is False else "video-loss")
    elif "storagefailure" in t or "hardwarefailure" in t:
        categorize(ev, "host", "error", "storage-error" if "storage" in t else "hardware-failure")
    elif "digitalinput" in t or "logicalstate" in t:
        categorize(ev, "host", "info", "digital-input")
    else:
        last = plain.rsplit("/", 1)[-1] or "event"
        categorize(ev, "host", "info", "onvif-" + last.lower())
    set_field(ev, "onvif.topic_plain", plain)


_XML_STARTS = ("<?xml", "<s:Envelope", "<soap:Envelope", "<SOAP-ENV:Envelope", "<env:Envelope", "<wsnt:Notify",
               "<Envelope")


class OnvifParser:
    name = "onvif"
    dataset = "onvif.event"
    module = "onvif"
    order = 0
    line_sniff = True

    def sniff_line(self, line: str) -> bool:
        """An XML document or SOAP envelope (tried before syslog, which also starts with ``<``)."""
        return line.lstrip().startswith(_XML_STARTS)

    def parse(self, record: RawRecord, *, now: _dt.datetime | None = None) -> Event:
        now = now or utcnow()
        if len(record.data) > MAX_XML_BYTES:
            raise ParseError(f"ONVIF document of {len(record.data)} bytes is over the {MAX_XML_BYTES}-byte limit")
        ev, text = base_event(record, now, dataset=self.dataset, module=self.module)
        try:
            root = fromstring(record.data)
        except DefusedXmlException as exc:
            raise ParseError(f"ONVIF document refused: {type(exc).__name__} (DTDs and entities are not allowed)") from exc
        except XmlParseError as exc:
            raise ParseError(f"ONVIF document is not well-formed XML: {exc}") from exc
        except (LookupError, ValueError) as exc:  # an XML declaration naming an encoding Python does not have
            raise ParseError(f"ONVIF document cannot be decoded: {exc}") from exc
        msgs = [_message(nm) for nm in root.iter(f"{_WSNT}NotificationMessage")]
        if not msgs:
            add_tag(ev, "onvif_no_notification")
            ev["message"] = text[:1024]
            categorize(ev, "host", "info", "onvif-unknown")
            return ev
        first = msgs[0]
        onvif: dict[str, Any] = {k: v for k, v in first.items() if v not in ({}, None)}
        if len(msgs) > 1:
            onvif["messages"] = msgs
            add_tag(ev, "onvif_multiple_messages")
        ev["onvif"] = onvif
        topic = first.get("topic", "")
        _classify(ev, topic, first.get("data", {}))
        set_timestamp(ev, first.get("utc_time"), now)
        set_field(ev, "observer.type", "camera")
        producer = first.get("producer")
        if producer:
            host = urlsplit(producer).hostname
            if host:
                try:
                    set_field(ev, "observer.ip", [str(ipaddress.ip_address(host))])
                except ValueError:
                    set_field(ev, "observer.hostname", host)
        source = first.get("source") or {}
        parts = [f"{k}={v}" for k, v in source.items()] + [f"{k}={v}" for k, v in (first.get("data") or {}).items()]
        ev["message"] = f"{topic} " + " ".join(parts) if parts else topic
        return ev


PARSER = OnvifParser()
