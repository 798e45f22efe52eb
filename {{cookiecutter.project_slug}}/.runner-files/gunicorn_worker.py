"""Gunicorn's Uvicorn worker with the limits the stock one leaves out.

`uvicorn_worker.UvicornWorker` passes keep-alive, max_requests and forwarded_allow_ips from
Gunicorn to Uvicorn, but not a concurrency limit, a header size limit nor a graceful-shutdown bound,
and it keeps Uvicorn's `server` header. This subclass sets those from the service's Settings, the
same values server.py gives Uvicorn for the other runners. gunicorn.conf.py names it.

It also hands Uvicorn Gunicorn's plain sockets: uvloop closes a listening socket it serves itself;
handed Gunicorn's wrapper instead, it closes the wrapper too, and every worker logs "Error while
closing socket [Errno 9] Bad file descriptor" at shutdown. A plain socket it just detaches. That
happens in run(): with reuse_port, Gunicorn gives each worker its own sockets after constructing it.
"""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]  # no type hints shipped

from {{ cookiecutter.package_name }}.http_protocol import HTTP_PROTOCOL
from {{ cookiecutter.package_name }}.settings import get_settings


class LimitedUvicornWorker(UvicornWorker):  # type: ignore[misc]  # base class is untyped
    sockets: list[Any]  # Gunicorn's listeners, set by the base class

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        # Config reads these when the server starts (config.load()), after this constructor.
        self.config.http = HTTP_PROTOCOL
        self.config.limit_concurrency = settings.limit_concurrency or None
        self.config.h11_max_incomplete_event_size = settings.max_header_bytes
        self.config.timeout_graceful_shutdown = settings.graceful_timeout
        self.config.server_header = False

    def run(self) -> None:
        self.sockets = [getattr(listener, "sock", listener) for listener in self.sockets]
        super().run()
