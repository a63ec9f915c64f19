"""uvicorn's h11 protocol with a deadline for each request head (see :mod:`._http`; imported with uvicorn)."""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["GuardedH11Protocol"]

_TIMEOUT_BODY = b"the request head did not arrive in time"
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
    + b"content-length: %d\r\n\r\n" % len(_TIMEOUT_BODY)
    + _TIMEOUT_BODY
)


class GuardedH11Protocol(H11Protocol):  # type: ignore[misc]  # uvicorn's protocol class, its hooks extended
    """uvicorn's h11 protocol with a deadline for each request head.

    A connection must send a complete request head within :attr:`header_timeout` seconds of opening, or of
    its previous answer; past it the server answers 408 and closes it (an idle connection is just closed).
    """

    #: Seconds for a request head (set by :func:`._http.uvicorn_options`).
    header_timeout: float = 10.0
    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the head arrived (or the connection is done)
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()  # the next request's head has the same time

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_deadline = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            if self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]:
                self.transport.write(_TIMEOUT_RESPONSE)  # part of a head came: tell the client why
            self.transport.close()
