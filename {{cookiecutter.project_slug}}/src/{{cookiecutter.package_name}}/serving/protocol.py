"""Uvicorn's httptools protocol with what Uvicorn 0.54 has no option for (docs/operations.md).

- Header limit: httptools buffers headers of any size; past MAX_HEADER_BYTES this answers 431.
- Drain, a workaround for https://github.com/Kludex/uvicorn/issues/2757 (delete once fixed): on a
  stop Uvicorn closes idle connections at once, resetting a request already on its way. Here they
  stay open DRAIN_GRACE_SECONDS, and what arrives is answered with `Connection: close`.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from {{ cookiecutter.package_name }}.settings import get_settings

HTTP_PROTOCOL = f"{__name__}:HttpProtocol"

# Long enough for a request sent just before the close to arrive; short enough not to delay a stop.
DRAIN_GRACE_SECONDS = 0.5

RESPONSE_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 31\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"Request header fields too large"
)

# Servers that have begun to stop: a connection accepted in the same loop turn drains as well.
draining_servers: weakref.WeakSet[ServerState] = weakref.WeakSet()


class HeadersTooLargeError(Exception):
    """Raised from a parser callback; the parser error it becomes is answered with 431."""


class HttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes = get_settings().max_header_bytes
        self.received_while_awaiting = 0
        self.refusing = False
        self.draining = False
        self.drain_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.server_state in draining_servers:
            self.shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.drain_timer is not None:
            self.drain_timer.cancel()
        super().connection_lost(exc)

    # --- header limit: two overrides and no per-header callback (each one costs every request) ---

    def data_received(self, data: bytes) -> None:
        request_before = self.scope  # Uvicorn makes a new scope for each request that begins
        super().data_received(data)
        # Count a chunk only when no request began in it: such a chunk may end the previous body.
        if self.scope is request_before and self.reading_headers() and not self.transport.is_closing():
            self.received_while_awaiting += len(data)
            if self.received_while_awaiting > self.max_header_bytes:
                self.refuse()

    def reading_headers(self) -> bool:
        """Whether a request has begun whose headers are incomplete: Uvicorn makes its cycle once they are."""
        return self.scope is not None and (self.cycle is None or self.cycle.scope is not self.scope)

    def on_headers_complete(self) -> None:
        self.received_while_awaiting = 0
        # The request target and each header as the parser reported them, with ": " and CRLF.
        header_bytes = len(self.url) + 4 * len(self.headers)
        for name, value in self.headers:
            header_bytes += len(name) + len(value)
        if header_bytes > self.max_header_bytes:
            self.refusing = True
            raise HeadersTooLargeError
        super().on_headers_complete()
        if self.draining and self.cycle is not None:
            self.cycle.keep_alive = False  # answered with Connection: close, then closed

    def send_400_response(self, msg: str) -> None:
        if self.refusing:
            self.refuse()
        else:
            super().send_400_response(msg)

    def refuse(self) -> None:
        self.logger.warning("Request headers larger than %d bytes: refused", self.max_header_bytes)
        self.transport.write(RESPONSE_431)
        self.transport.close()

    # --- drain ---

    def shutdown(self) -> None:
        """Called by the server on each open connection when it begins to stop."""
        draining_servers.add(self.server_state)
        if self.draining:
            return
        self.draining = True
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # the request in progress is answered, then the connection closes
        else:
            self.drain_timer = self.loop.call_later(DRAIN_GRACE_SECONDS, self.close_if_idle)

    def close_if_idle(self) -> None:
        if self.transport.is_closing():
            return
        if self.reading_headers():
            # Part of a request has arrived: wait for the rest (the server's graceful timeout bounds it).
            self.drain_timer = self.loop.call_later(DRAIN_GRACE_SECONDS, self.close_if_idle)
        elif self.cycle is None or self.cycle.response_complete:
            self.transport.close()
        # Otherwise a request arrived in the grace: its answer closes the connection.
