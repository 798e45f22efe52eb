"""Uvicorn's httptools protocol and server, plus what Uvicorn 0.54 lacks (docs/operations.md lists each, with its issue)."""

import asyncio
import contextlib
import logging
import os
import socket
import weakref
from functools import partial
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from {{ cookiecutter.package_name }}.settings import get_settings

logger = logging.getLogger("uvicorn.error")
UNLOGGED = logging.Logger(__name__, logging.CRITICAL + 1)  # above every level; outside logging's registry

DRAIN_GRACE_SECONDS = 0.5  # for a request sent just before a stop to arrive; short, not to delay the stop
HEADER_TIMEOUT_SECONDS = 10
BODY_HEADERS = (b"content-length", b"transfer-encoding")
MAX_CONNECTIONS = 4096  # per worker; each is an open file (the systemd unit's LimitNOFILE)
RESPONSE_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
draining_servers: weakref.WeakSet[ServerState] = weakref.WeakSet()  # stopping: each answer closes its connection


class HttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes = get_settings().max_header_bytes
        self.received_while_awaiting = 0
        self.trailer_bytes: int | None = None  # since a chunk's size line, while none of its data came
        self.refusing = False
        self.header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > MAX_CONNECTIONS:  # close idle keep-alive ones, to a tenth below the cap
            http = [one for one in self.connections if isinstance(one, HttpProtocol) and one.cycle is not None]
            idle = [one for one in http if one.cycle.response_complete and not one.reading_headers()]
            for connection in idle[: len(self.connections) - MAX_CONNECTIONS * 9 // 10]:
                connection.transport.close()
        self.header_timer = self.loop.call_later(HEADER_TIMEOUT_SECONDS, self.header_timeout)

    def answered(self) -> bool:  # no answer under way: none begun, or the last one complete
        return self.cycle is None or self.cycle.response_complete

    def header_timeout(self) -> None:
        self.header_timer = None
        if (self.scope is None or self.reading_headers()) and self.answered():
            self.transport.close()

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
        header_bytes, hosts = len(self.url) + 4 * len(self.headers), 0  # the target and headers, with ": " and CRLF
        for name, value in self.headers:
            header_bytes += len(name) + len(value)
            hosts += name == b"host"
        if header_bytes > self.max_header_bytes:
            self.refusing = True
            self.logger = UNLOGGED  # Uvicorn would log the parser error this becomes as an invalid request
            raise ValueError("headers too large")  # a parser error, answered by send_400_response (with 431)
        if hosts > 1:
            raise ValueError("two Host headers")  # Uvicorn answers 400, as RFC 9112 (3.2) requires
        super().on_headers_complete()
        if self.cycle is None:
            return
        # A client that asked to close is left to: closing while its body (a refused one) still arrives resets it.
        if not self.cycle.keep_alive and any(name in BODY_HEADERS for name, _ in self.headers):
            self.cycle.keep_alive = True
        if self.server_state in draining_servers:
            self.cycle.keep_alive = False  # answered with Connection: close, then closed

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

    def shutdown(self) -> None:
        """Uvicorn's, but a request still arriving is awaited (the header timeout bounds it), not reset."""
        if not self.reading_headers():
            super().shutdown()


class Server(uvicorn.Server):
    """Uvicorn's, first taking the connections queued on its sockets: closing them resets those (docs/operations.md)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        draining_servers.add(self.server_state)
        loop, taken = asyncio.get_running_loop(), []
        protocol = partial(HttpProtocol, self.config, self.server_state, self.lifespan.state)
        for server in self.servers:
            queues = [socket.socket(fileno=os.dup(listener.fileno())) for listener in server.sockets]
            server.close()  # the loop accepts no more; our copies keep the queues until taken
            for queue in queues:
                with queue, contextlib.suppress(BlockingIOError):
                    queue.setblocking(False)
                    while True:
                        taken.append(loop.create_task(loop.connect_accepted_socket(protocol, queue.accept()[0])))
        for connection in self.server_state.connections:  # an answer under way closes its connection
            if isinstance(connection, HttpProtocol) and not connection.answered():
                connection.cycle.keep_alive = False
        if self.server_state.connections or taken:  # a request sent just before the close arrives, and is answered
            await asyncio.sleep(DRAIN_GRACE_SECONDS)
        await super().shutdown(sockets)  # Uvicorn's: idle connections closed, the others awaited
