"""Hardening: the security headers and the request body limit (both applied by EdgeMiddleware, in
its one pass), the Host check, and a safe 500.

Each piece does the least per request because every request pays it; main.py adds only the ones
the settings turn on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from fastapi import HTTPException, Request, status
from fastapi.responses import JSONResponse
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Answered whatever the Host header: orchestrators probe with the pod's address.
PROBE_PATHS = frozenset({"/livez", "/readyz"})
# Added to every response: no MIME sniffing, and no framing (clickjacking), as OWASP's REST
# Security Cheat Sheet lists for APIs. Safe for the /docs page too (it loads its scripts from a
# CDN, so no script policy).
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
)
# Added to HTML responses only (the /docs and /redoc pages): these two act on documents a browser
# shows, not on JSON a client reads, and each header costs every response a little.
DOCUMENT_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class BodyTooLargeError(HTTPException):
    """Raised from `receive` when a streamed body passes the limit: FastAPI passes HTTPException
    through its body parsing, so the client gets this 413 rather than a generic 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, f"Request body larger than {limit} bytes")


def limited_receive(receive: Receive, limit: int) -> Receive:
    """`receive` that raises BodyTooLargeError as soon as the body received passes `limit` bytes."""
    received = 0

    async def receive_within_limit() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLargeError(limit)
        return message

    return receive_within_limit


async def send_body_too_large(send: Send, limit: int) -> None:
    """The 413 for a declared Content-Length over `limit`, sent before the body is read (so the
    connection closes: the unread body would otherwise be taken for the next request)."""
    body = json.dumps({"detail": f"Request body larger than {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status.HTTP_413_CONTENT_TOO_LARGE,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class HostCheckMiddleware:
    """Starlette's TrustedHostMiddleware (400 for a Host not allowed), except on the probe paths:
    Kubernetes and load balancers probe with the pod's address as Host."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: Iterable[str], exempt_paths: Iterable[str]) -> None:
        self.app = app
        self.checked = TrustedHostMiddleware(app, allowed_hosts=list(allowed_hosts), www_redirect=False)
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in {"http", "websocket"} and scope["path"] not in self.exempt_paths:
            await self.checked(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def internal_error(request: Request, error: Exception) -> JSONResponse:
    """The answer to an unhandled error: a fixed message, never the exception or a traceback (the
    server logs those)."""
    return JSONResponse({"detail": "Internal Server Error"}, status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)
