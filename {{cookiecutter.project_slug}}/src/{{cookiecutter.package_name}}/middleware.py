"""The one pure ASGI middleware every HTTP request passes through: a request id, the request body
limit, the security headers and one access log line.

Pure ASGI rather than Starlette's `BaseHTTPMiddleware`, which costs time on every request and
breaks streaming and background tasks in known ways. One layer rather than one per job, since each
layer wraps `send` again, and one scan of the request headers for all of them: every request pays
for what is here (bench/run.py in the template measures it against bare FastAPI).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.package_name }}.logging_config import AccessLog, request_id_var
from {{ cookiecutter.package_name }}.security import (
    limited_receive,
    send_body_too_large,
)

access_logger = logging.getLogger("{{ cookiecutter.package_name }}.access")

REQUEST_ID_HEADER = b"x-request-id"
# A client's own id is kept only when it is short and plain, so it cannot forge log lines.
VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
# Probes hit these every few seconds; logging them would bury the real traffic.
UNLOGGED_PATHS = frozenset({"/livez", "/readyz"})


def new_request_id() -> str:
    """128 random bits as 32 hex digits, like uuid4().hex at a quarter of the cost."""
    return os.urandom(16).hex()


def is_html(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    # Starlette's responses write header names in lowercase.
    for name, value in headers:
        if name == b"content-type":
            return value.startswith(b"text/html")
    return False


class EdgeMiddleware:
    """For each HTTP request: take the client's X-Request-ID when valid, else make one, and echo it
    in the response; refuse a body over `max_body_bytes` with 413 (at once when Content-Length says
    so, or as soon as a chunked body passes it); add `response_headers` to every response and
    `document_headers` to HTML ones; write one access log line when the response is done."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        access_log: bool = True,
        response_headers: Iterable[tuple[bytes, bytes]] = (),
        document_headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.response_headers = tuple(response_headers)
        self.document_headers = tuple(document_headers)
        # Built with the app's middleware at its first request, after the server configured logging.
        self.access_log = AccessLog(access_logger) if access_log else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        client_request_id: bytes | None = None
        declared_length: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                client_request_id = value
            elif name == b"content-length":
                declared_length = value
            elif name == b"transfer-encoding":
                chunked = True
        if client_request_id is not None and VALID_REQUEST_ID.fullmatch(client_request_id):
            request_id = client_request_id.decode("ascii")
        else:
            request_id = new_request_id()
            client_request_id = request_id.encode("ascii")
        added_headers = (*self.response_headers, (REQUEST_ID_HEADER, client_request_id))
        document_headers = self.document_headers
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), *added_headers]
                if document_headers and is_html(headers):
                    headers += document_headers
                message["headers"] = headers
            await send(message)

        try:
            # The server has checked that Content-Length is a number, and delivers exactly that much.
            if declared_length is not None and not chunked and int(declared_length) > self.max_body_bytes:
                await send_body_too_large(send_with_headers, self.max_body_bytes)
            elif chunked:
                await self.app(scope, limited_receive(receive, self.max_body_bytes), send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            if self.access_log is not None and scope["path"] not in UNLOGGED_PATHS:
                self.access_log.write(scope, status, (time.perf_counter() - started) * 1000)
            request_id_var.reset(token)
