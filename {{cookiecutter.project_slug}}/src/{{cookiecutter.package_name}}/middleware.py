"""Pure ASGI middleware: a request id, the fixed response headers and one access log line per HTTP
request.

Pure ASGI rather than Starlette's `BaseHTTPMiddleware`, which costs time on every request and
breaks streaming and background tasks in known ways. Every request passes through here, so each
step is kept cheap, and it is one layer rather than one per job: each layer wraps `send` again
(bench/run.py in the template measures it against bare FastAPI).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.package_name }}.logging_config import AccessLog, request_id_var

access_logger = logging.getLogger("{{ cookiecutter.package_name }}.access")

REQUEST_ID_HEADER = b"x-request-id"
# A client's own id is kept only when it is short and plain, so it cannot forge log lines.
VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
# Probes hit these every few seconds; logging them would bury the real traffic.
UNLOGGED_PATHS = frozenset({"/livez", "/readyz"})


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            return value.decode("ascii") if VALID_REQUEST_ID.fullmatch(value) else None
    return None


def new_request_id() -> str:
    """128 random bits as 32 hex digits, like uuid4().hex at a quarter of the cost."""
    return os.urandom(16).hex()


class RequestContextMiddleware:
    """Give each HTTP request an id (the client's X-Request-ID when valid, else a new one), echo it
    in the response with `response_headers` (the security headers), and write one access log line
    when the response is done."""

    def __init__(
        self, app: ASGIApp, *, access_log: bool = True, response_headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> None:
        self.app = app
        self.response_headers = tuple(response_headers)
        # Built with the app's middleware at its first request, after the server configured logging.
        self.access_log = AccessLog(access_logger) if access_log else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = incoming_request_id(scope) or new_request_id()
        added_headers = (*self.response_headers, (REQUEST_ID_HEADER, request_id.encode("ascii")))
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *added_headers]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if self.access_log is not None and scope["path"] not in UNLOGGED_PATHS:
                client = scope.get("client")
                self.access_log.write(
                    f'{client[0] if client else "-"} "{scope["method"]} {scope["path"]} '
                    f'HTTP/{scope["http_version"]}" {status} {(time.perf_counter() - started) * 1000:.1f}ms'
                )
            request_id_var.reset(token)
