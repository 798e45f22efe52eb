"""Uvicorn's httptools protocol with a limit on the request line plus headers.

httptools (the fast parser `uvicorn[standard]` brings) has no size limit of its own: it buffers a
header of any length. This subclass answers 431 and closes the connection when a request line plus
headers pass the `max_header_bytes` setting: counted exactly as the parser reports them, and, so
that a worker never buffers megabytes first, also by the bytes received while headers are incomplete. (Uvicorn's h11 parser has `h11_max_incomplete_event_size`
instead; server.py sets both.) Uvicorn loads it by import string: `http=HTTP_PROTOCOL`.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from {{ cookiecutter.package_name }}.settings import get_settings

HTTP_PROTOCOL = f"{__name__}:HeaderLimitedHttpToolsProtocol"

RESPONSE_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 31\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"Request header fields too large"
)


class HeadersTooLargeError(Exception):
    """Raised from a parser callback; the parser error it becomes is answered with 431."""


class HeaderLimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes = get_settings().max_header_bytes
        self.awaiting_headers = True
        self.headers_completed = False
        self.received_while_awaiting = 0
        self.header_bytes = 0
        self.refusing = False

    def data_received(self, data: bytes) -> None:
        self.headers_completed = False
        super().data_received(data)
        # A chunk that ends with headers still incomplete (and completed none) is all header bytes.
        if self.awaiting_headers and not self.headers_completed and not self.transport.is_closing():
            self.received_while_awaiting += len(data)
            if self.received_while_awaiting > self.max_header_bytes:
                self.refuse()

    def on_message_begin(self) -> None:
        self.header_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self.header_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value) + 4  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.awaiting_headers = False
        self.headers_completed = True
        self.received_while_awaiting = 0
        if self.header_bytes > self.max_header_bytes:
            self.refusing = True
            raise HeadersTooLargeError
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.awaiting_headers = True

    def send_400_response(self, msg: str) -> None:
        if self.refusing:
            self.refuse()
        else:
            super().send_400_response(msg)

    def refuse(self) -> None:
        self.logger.warning("Request headers larger than %d bytes: refused", self.max_header_bytes)
        self.transport.write(RESPONSE_431)
        self.transport.close()
