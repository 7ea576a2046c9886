"""HTTP/1.x and RTSP message heads to ECS fields.

RTSP (camera streams) borrows HTTP's grammar: a start line, then ``Name: value``
headers, then a blank line. Both are read from the first bytes of a message; bodies
and streams are never kept. Credentials never reach an event: ``Authorization`` and
cookies keep only their scheme or the fact they were present, and user:password in
an ``rtsp://user:pass@cam/`` URL is stripped.

Why keep other request headers at all: Log4Shell and its kin hide the payload in any
header (``X-Api-Version: ${jndi:...}``), so a rule must be able to see them.
"""
from __future__ import annotations

from typing import Any, NamedTuple
from urllib.parse import urlsplit

__all__ = [
    "Head",
    "parse_head",
    "head_complete",
    "HTTP_METHODS",
    "RTSP_METHODS",
    "REQUEST_PREFIXES",
    "RESPONSE_PREFIXES",
    "http_request_fields",
    "http_response_fields",
    "rtsp_request_fields",
    "rtsp_response_fields",
    "MAX_HEAD",
]

HTTP_METHODS = ("GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
                "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH")
RTSP_METHODS = ("DESCRIBE", "SETUP", "PLAY", "PAUSE", "TEARDOWN", "GET_PARAMETER", "SET_PARAMETER",
                "ANNOUNCE", "RECORD", "REDIRECT", "OPTIONS")
REQUEST_PREFIXES = tuple(sorted({(m + " ").encode() for m in HTTP_METHODS + RTSP_METHODS}))
RESPONSE_PREFIXES = (b"HTTP/1.", b"HTTP/2", b"RTSP/1.", b"RTSP/2")
MAX_HEAD = 16384
_MAX_VALUE = 8192
_MAX_HEADERS = 64
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie",
                             "x-api-key", "x-auth-token"})


class Head(NamedTuple):
    """A parsed start line (three parts) and headers (lower-cased names, in order)."""

    start: tuple[str, str, str]
    headers: list[tuple[str, str]]
    complete: bool

    def get(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


def head_complete(buf: bytes | bytearray) -> bool:
    """True once the blank line that ends a message head has arrived."""
    return b"\r\n\r\n" in buf or b"\n\n" in buf


def parse_head(buf: bytes | bytearray) -> Head | None:
    """Parse a message head from the start of ``buf``; ``None`` if the start line is not one."""
    end = buf.find(b"\r\n\r\n")
    complete = end >= 0
    if not complete:
        end = buf.find(b"\n\n")
        complete = end >= 0
    text = bytes(buf[: end if complete else len(buf)]).decode("latin-1")
    lines = text.split("\n")
    parts = lines[0].rstrip("\r").split(" ", 2)
    if len(parts) < 2:
        return None
    if len(parts) == 2:
        parts.append("")
    headers: list[tuple[str, str]] = []
    for line in lines[1:_MAX_HEADERS + 1]:
        line = line.rstrip("\r")
        if not line:
            break
        if line[0] in " \t" and headers:  # obsolete line folding
            k, v = headers[-1]
            headers[-1] = (k, (v + " " + line.strip())[:_MAX_VALUE])
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        headers.append((name.strip().lower(), value.strip()[:_MAX_VALUE]))
    return Head((parts[0], parts[1], parts[2]), headers, complete)


def _host_port(host: str | None) -> tuple[str | None, int | None]:
    if not host:
        return None, None
    if host.startswith("["):  # [v6]:port
        h, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        h, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
    return (h or None), (int(port) if port.isdigit() and int(port) < 65536 else None)


def _headers_kept(head: Head) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in head.headers:
        if k in _SECRET_HEADERS:
            v = v.split(" ", 1)[0] + " [redacted]" if k.endswith("authorization") else "[redacted]"
        out[k] = v if k not in out else out[k] + ", " + v
    return out


def _url(target: str, host_header: str | None, scheme: str) -> dict[str, Any]:
    url: dict[str, Any] = {}
    had_credentials = False
    if "://" in target:
        sp = urlsplit(target)
        scheme = sp.scheme or scheme
        netloc = sp.netloc
        if "@" in netloc:
            had_credentials = True
            netloc = netloc.rsplit("@", 1)[1]
        host, port = _host_port(netloc)
        path, query = sp.path or "/", sp.query
        original = f"{scheme}://{netloc}{sp.path}" + (f"?{sp.query}" if sp.query else "")
    else:
        host, port = _host_port(host_header)
        path, _, query = target.partition("?")
        original = target
    url["original"] = original
    url["scheme"] = scheme
    if path:
        url["path"] = path
    if query:
        url["query"] = query
    if host:
        url["domain"] = host
    if port is not None:
        url["port"] = port
    if had_credentials:
        url["_credentials_removed"] = True
    return url


def _version(proto: str) -> str | None:
    return proto.split("/", 1)[1] if "/" in proto else None


def http_request_fields(head: Head) -> dict[str, Any]:
    """ECS fields of an HTTP request head."""
    method, target, proto = head.start
    url = _url(target, head.get("host"), "http")
    url.pop("_credentials_removed", None)
    req: dict[str, Any] = {"method": method}
    http: dict[str, Any] = {"request": req}
    if (v := _version(proto)) is not None:
        http["version"] = v
    if (ref := head.get("referer")) is not None:
        req["referrer"] = ref
    if (ct := head.get("content-type")) is not None:
        req["mime_type"] = ct.split(";", 1)[0].strip()
    if (cl := head.get("content-length")) is not None and cl.isdigit():
        req["body"] = {"bytes": int(cl)}
    fields: dict[str, Any] = {"http": http, "url": url,
                              "citysoc": {"network": {"http": {"request_headers": _headers_kept(head)}}}}
    if (ua := head.get("user-agent")) is not None:
        fields["user_agent"] = {"original": ua}
    if (auth := head.get("authorization")) is not None:
        fields["citysoc"]["network"]["http"]["authorization"] = auth.split(" ", 1)[0]
    return fields


def http_response_fields(head: Head) -> dict[str, Any]:
    """ECS fields of an HTTP response head (status line ``HTTP/1.1 404 Not Found``)."""
    proto, status, _reason = head.start
    resp: dict[str, Any] = {}
    if status.isdigit():
        resp["status_code"] = int(status)
    if (ct := head.get("content-type")) is not None:
        resp["mime_type"] = ct.split(";", 1)[0].strip()
    if (cl := head.get("content-length")) is not None and cl.isdigit():
        resp["body"] = {"bytes": int(cl)}
    http: dict[str, Any] = {"response": resp}
    if (v := _version(proto)) is not None:
        http["version"] = v
    fields: dict[str, Any] = {"http": http}
    if (server := head.get("server")) is not None:
        fields["citysoc"] = {"network": {"http": {"server": server}}}
    return fields


def rtsp_request_fields(head: Head) -> dict[str, Any]:
    """ECS fields of an RTSP request: method, URL without credentials, auth scheme only."""
    method, target, proto = head.start
    url = _url(target, None, "rtsp")
    rtsp: dict[str, Any] = {"method": method, "version": _version(proto)}
    if url.pop("_credentials_removed", False):
        rtsp["url_had_credentials"] = True
    auth = head.get("authorization")
    rtsp["authorization"] = {"present": auth is not None}
    if auth:
        rtsp["authorization"]["scheme"] = auth.split(" ", 1)[0]
    if (cseq := head.get("cseq")) is not None and cseq.isdigit():
        rtsp["cseq"] = int(cseq)
    fields: dict[str, Any] = {"url": url, "citysoc": {"network": {"rtsp": rtsp}}}
    if (ua := head.get("user-agent")) is not None:
        fields["user_agent"] = {"original": ua}
    return fields


def rtsp_response_fields(head: Head) -> dict[str, Any]:
    """ECS fields of an RTSP response (``RTSP/1.0 401 Unauthorized``)."""
    proto, status, reason = head.start
    rtsp: dict[str, Any] = {"version": _version(proto), "reason": reason}
    if status.isdigit():
        rtsp["status_code"] = int(status)
    if (cseq := head.get("cseq")) is not None and cseq.isdigit():
        rtsp["cseq"] = int(cseq)
    if (www := head.get("www-authenticate")) is not None:
        rtsp["authenticate_scheme"] = www.split(" ", 1)[0]
    if (server := head.get("server")) is not None:
        rtsp["server"] = server
    return {"citysoc": {"network": {"rtsp": rtsp}}}
