"""Pure ASGI hardening: a request body limit, the Host check, a safe 500, and the security headers
(which RequestContextMiddleware adds to every response, in the same step as the request id).

Each piece does the least per request (a header scan, no copies) because every request pays it;
main.py adds only the ones the settings turn on.
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
# Added to every response. Safe for an API and for the /docs page (which loads its scripts from a
# CDN, so no script policy).
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class BodyTooLargeError(HTTPException):
    """Raised from `receive` when a streamed body passes the limit: FastAPI passes HTTPException
    through its body parsing, so the client gets this 413 rather than a generic 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, f"Request body larger than {limit} bytes")


class BodySizeLimitMiddleware:
    """413 for a request body over `max_body_bytes`: at once when Content-Length says so, or as
    soon as a chunked body passes it. Requests without a body are not touched."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is not None and not chunked:
            # The server has checked Content-Length is a number and delivers exactly that much.
            if int(declared) > self.max_body_bytes:
                await self.refuse(send)
                return
            await self.app(scope, receive, send)
            return
        if not chunked:
            await self.app(scope, receive, send)
            return

        received = 0
        limit = self.max_body_bytes

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        await self.app(scope, limited_receive, send)

    async def refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"Request body larger than {self.max_body_bytes} bytes"}).encode()
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
