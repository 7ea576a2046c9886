"""A deadline for request headers: a client that trickles its headers is cut off.

uvicorn's h11 server arms its keep-alive timer only after a response, and cancels it on
every byte received; a new connection has no timer at all. So a client sending one header
byte every few seconds keeps a connection (and one of ``server.limit_concurrency`` slots)
forever; a few hundred such clients take the console and ``_bulk`` away from everyone.

:func:`header_timeout_protocol` returns uvicorn's h11 protocol with one more timer: armed
when a connection opens and again after each response on a kept-alive connection, and
cancelled once a request's headers are complete. When it fires before that, the connection
is closed (nothing is answered: there is no request to answer). Bodies are not under this
deadline: a large ``_bulk`` body may take its time, bounded by the body limits.

Example::

    uvicorn.Config(app, http=header_timeout_protocol(10.0), h11_max_incomplete_event_size=64 * 1024)
"""
from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["header_timeout_protocol"]


def header_timeout_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol class with a ``seconds`` deadline for each request's headers."""

    class HeaderTimeoutH11Protocol(H11Protocol):
        header_timeout_s = seconds
        _header_timer: asyncio.TimerHandle | None = None

        def _arm_header_timer(self) -> None:
            self._cancel_header_timer()
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_deadline)

        def _cancel_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_deadline(self) -> None:
            self._header_timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()  # headers never completed: nothing to answer

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_timer()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._cancel_header_timer()  # the request line and headers are in

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_header_timer()  # the next request on this connection gets its own deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_timer()
            super().connection_lost(exc)

    return HeaderTimeoutH11Protocol
