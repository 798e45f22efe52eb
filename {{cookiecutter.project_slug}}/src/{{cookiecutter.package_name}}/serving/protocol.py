"""Uvicorn's httptools protocol with what Uvicorn 0.54 has no option for (docs/operations.md).

- Header limit: httptools buffers headers and trailers of any size; past MAX_HEADER_BYTES: 431.
- Slow clients: HEADER_TIMEOUT_SECONDS for headers; past MAX_CONNECTIONS, idle keep-alives close.
- Linger: closing while a body still arrives (a 413), read it LINGER_SECONDS at most: no reset.
- Two Host headers: 400.
- Drain, a workaround for https://github.com/Kludex/uvicorn/issues/2757 (delete once fixed): on a
  stop Uvicorn closes idle connections at once, resetting a request already on its way. Here they
  stay open DRAIN_GRACE_SECONDS, and what arrives is answered with `Connection: close`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from types import SimpleNamespace
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from {{ cookiecutter.package_name }}.settings import get_settings

HTTP_PROTOCOL = f"{__name__}:HttpProtocol"
logger = logging.getLogger("uvicorn.error")
UNLOGGED = logging.Logger(__name__)  # outside logging's registry: no configuration turns it on
UNLOGGED.disabled = True

# Long enough for a request sent just before the close to arrive; short enough not to delay a stop.
DRAIN_GRACE_SECONDS = 0.5
HEADER_TIMEOUT_SECONDS = 10
LINGER_SECONDS = 5
MAX_CONNECTIONS = 4096  # per worker; each is an open file (the systemd unit's LimitNOFILE)

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
        self.trailer_bytes: int | None = None  # since a chunk's size line, while none of its data came
        self.refusing = False
        self.draining = False
        self.drain_timer: asyncio.TimerHandle | None = None
        self.header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.server_state in draining_servers:
            self.shutdown()
        if len(self.connections) > MAX_CONNECTIONS:  # close idle keep-alive ones, to a tenth below the cap
            http = [one for one in self.connections if isinstance(one, HttpProtocol) and one.cycle is not None]
            idle = [one for one in http if one.cycle.response_complete and not one.reading_headers()]
            for connection in idle[: len(self.connections) - MAX_CONNECTIONS * 9 // 10]:
                connection.transport.close()
        self.header_timer = self.loop.call_later(HEADER_TIMEOUT_SECONDS, self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.drain_timer is not None:
            self.drain_timer.cancel()
        super().connection_lost(exc)

    def answered(self) -> bool:
        """Whether no answer is under way (none begun, or the last one complete)."""
        return self.cycle is None or self.cycle.response_complete

    def header_timeout(self) -> None:
        self.header_timer = None
        if (self.scope is None or self.reading_headers()) and self.answered():
            self.transport.close()

    # --- header limit: no per-header callback (each one costs every request) ---

    def data_received(self, data: bytes) -> None:
        request_before = self.scope  # Uvicorn makes a new scope for each request that begins
        super().data_received(data)
        # Count a chunk only when no request began in it: such a chunk may end the previous body.
        if self.scope is request_before and self.reading_headers() and not self.transport.is_closing():
            self.received_while_awaiting += len(data)
            if self.received_while_awaiting > self.max_header_bytes:
                self.refuse()
        elif self.trailer_bytes is not None and not self.transport.is_closing():
            # -1: the size line ended in this data. Else all of it came after: the last chunk's trailers.
            self.trailer_bytes = 0 if self.trailer_bytes < 0 else self.trailer_bytes + len(data)
            if self.trailer_bytes > self.max_header_bytes:
                self.refuse()
        if self.header_timer is None and self.reading_headers():
            self.header_timer = self.loop.call_later(HEADER_TIMEOUT_SECONDS, self.header_timeout)

    def on_chunk_header(self) -> None:  # chunked bodies only; the last chunk's trailers follow its size line
        self.trailer_bytes = -1

    def on_body(self, body: bytes) -> None:
        self.trailer_bytes = None
        super().on_body(body)

    def reading_headers(self) -> bool:
        """Whether a request has begun whose headers are incomplete: Uvicorn makes its cycle once they are."""
        return self.scope is not None and (self.cycle is None or self.cycle.scope is not self.scope)

    def on_headers_complete(self) -> None:
        self.received_while_awaiting, self.trailer_bytes = 0, None
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None
        # The request target and each header as the parser reported them, with ": " and CRLF.
        header_bytes, hosts = len(self.url) + 4 * len(self.headers), 0
        for name, value in self.headers:
            header_bytes += len(name) + len(value)
            hosts += name == b"host"
        if header_bytes > self.max_header_bytes:
            self.refusing = True
            self.logger = UNLOGGED  # Uvicorn would log the parser error this becomes as an invalid request
            raise HeadersTooLargeError
        if hosts > 1:
            raise ValueError("two Host headers")  # Uvicorn answers 400, as RFC 9112 (3.2) requires
        super().on_headers_complete()
        if self.cycle is not None and (self.draining or not self.cycle.keep_alive):
            self.close_after_answer()

    def send_400_response(self, msg: str) -> None:
        if self.refusing:
            self.refuse()
        else:
            super().send_400_response(msg)

    def refuse(self) -> None:
        logger.warning("Request headers larger than %d bytes: refused", self.max_header_bytes)
        if self.cycle is None or self.cycle.scope is not self.scope or not self.cycle.response_started:
            self.transport.write(RESPONSE_431)
        self.transport.close()

    def close_after_answer(self) -> None:
        self.cycle.keep_alive = False  # answered with Connection: close; the cycle's close() lingers
        proxy = SimpleNamespace(write=self.transport.write, is_closing=self.transport.is_closing, close=self.linger)
        self.cycle.transport = proxy  # type: ignore[assignment]

    def linger(self) -> None:
        if self.cycle.response_complete and self.cycle.more_body and not self.transport.is_closing():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    # --- drain ---

    def shutdown(self) -> None:
        """Called by the server on each open connection when it begins to stop."""
        draining_servers.add(self.server_state)
        if self.draining:
            return
        self.draining = True
        if not self.answered():
            self.close_after_answer()  # the request in progress is answered, then the connection closes
        else:
            self.drain_timer = self.loop.call_later(DRAIN_GRACE_SECONDS, self.close_if_idle)

    def close_if_idle(self) -> None:
        if self.transport.is_closing():
            return
        if self.reading_headers():
            # Part of a request has arrived: wait for the rest (the server's graceful timeout bounds it).
            self.drain_timer = self.loop.call_later(DRAIN_GRACE_SECONDS, self.close_if_idle)
        elif self.answered():
            self.transport.close()
        # Otherwise a request arrived in the grace: its answer closes the connection.
