"""Gunicorn's Uvicorn worker with the limits the stock one does not pass from Gunicorn: the
limited protocol, a graceful-shutdown bound, no `server` header.
Set through uvicorn-worker's documented CONFIG_KWARGS, from the same settings as server.py.
"""

import sys
from typing import Any, ClassVar

import uvicorn_worker  # type: ignore[import-untyped]  # no type hints shipped
from gunicorn.arbiter import Arbiter  # type: ignore[import-untyped]

from {{ cookiecutter.package_name }}.serving.protocol import HttpProtocol, Server
from {{ cookiecutter.package_name }}.settings import get_settings

settings = get_settings()


class UvicornWorker(uvicorn_worker.UvicornWorker):  # type: ignore[misc]  # base class is untyped
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **uvicorn_worker.UvicornWorker.CONFIG_KWARGS,
        "http": HttpProtocol,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "timeout_graceful_shutdown": settings.graceful_timeout,
        "server_header": False,
    }
    sockets: list[Any]  # Gunicorn's listeners, set by the base class

    def run(self) -> None:
        # Hand Uvicorn the plain sockets: uvloop closes a listening socket it serves, and Gunicorn's
        # wrapper around it then logs "Error while closing socket [Errno 9]" at every worker exit.
        # Here in run(): with reuse_port, Gunicorn sets each worker's sockets after constructing it.
        self.sockets = [getattr(listener, "sock", listener) for listener in self.sockets]
        super().run()

    async def _serve(self) -> None:
        """The base class's, with serving.protocol.Server in place of Uvicorn's (uvicorn-worker has no option for it)."""
        self.config.app = self.wsgi
        self._install_sigquit_handler()
        server = Server(config=self.config)
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
