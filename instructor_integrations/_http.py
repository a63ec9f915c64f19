"""Bounds on an HTTP connection before the application sees its request, for ``instructor-embed serve``.

uvicorn runs the server with its h11 protocol, whose request-head buffer is capped
(``h11_max_incomplete_event_size``), so a header past :attr:`HttpLimits.max_header_bytes` is refused
with 400 and the connection closed before it can grow the process; ``limit_concurrency`` caps open
connections and running requests (503 past it); ``timeout_keep_alive`` closes idle kept-alive
connections. What uvicorn does not bound, this module's protocol adds: a connection must deliver a
complete request head within :attr:`HttpLimits.header_timeout` seconds of opening (or of its previous
answer), or it gets 408 and is closed. The body's pace is bounded by the application
(``ServerSettings.body_timeout``), which answers 408 in the protocol's error shape.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

from ._validation import check_positive_int, check_positive_seconds

__all__ = ["BODY_TIMEOUT", "HttpLimits", "uvicorn_options"]

#: Seconds the server waits for more of a request body (``ServerSettings.body_timeout``, ``serve --body-timeout``).
BODY_TIMEOUT = 30.0


@dataclass(frozen=True)
class HttpLimits:
    """The connection's bounds (each a ``serve`` option of the same name).

    Args:
        max_header_bytes: The request line and headers together, at most (400 and closed past it).
        header_timeout: Seconds a connection has to send a complete request head, from its opening or from
            its previous answer (408 and closed past it; an idle connection is closed).
        keep_alive_timeout: Seconds an idle kept-alive connection stays open after an answer.
        max_connections: Open connections (and running requests) at most; past it new requests get 503.

    Examples:
        >>> HttpLimits().max_header_bytes
        65536
        >>> HttpLimits(header_timeout=0)
        Traceback (most recent call last):
        ...
        ValueError: header_timeout must be a positive number of seconds, got 0
    """

    max_header_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 1024

    def __post_init__(self) -> None:
        check_positive_int(self.max_header_bytes, "max_header_bytes")
        check_positive_int(self.max_connections, "max_connections")
        check_positive_seconds(self.header_timeout, "header_timeout")
        check_positive_seconds(self.keep_alive_timeout, "keep_alive_timeout")


def uvicorn_options(limits: HttpLimits) -> dict[str, Any]:
    """The ``uvicorn.Config`` keyword arguments that apply ``limits``."""
    return {
        "http": _guarded_h11(limits.header_timeout),
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        "timeout_keep_alive": max(1, math.ceil(limits.keep_alive_timeout)),
        "limit_concurrency": limits.max_connections,
    }


def _guarded_h11(header_timeout: float) -> type[asyncio.Protocol]:
    """The h11 protocol of uvicorn with a deadline of ``header_timeout`` seconds for each request head."""
    from ._http_guard import GuardedH11Protocol

    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"header_timeout": header_timeout})
