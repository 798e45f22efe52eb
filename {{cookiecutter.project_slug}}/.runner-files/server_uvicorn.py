"""Serve the app with Uvicorn: the one place the production server's options are set.

`make run`, the systemd unit and the Docker image's CMD all start this (`python -m <package>`), so
every way of running the service uses the same options.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from {{ cookiecutter.package_name }}.http_protocol import HTTP_PROTOCOL
from {{ cookiecutter.package_name }}.logging_config import logging_config
from {{ cookiecutter.package_name }}.settings import Settings, load_settings_or_exit

# Uvicorn imports the app through load_app() in each worker (factory=True).
APP_LOADER = f"{__name__}:load_app"
WORKER_HEALTHCHECK_TIMEOUT = 30


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        # More than 1 runs Uvicorn's supervisor, which restarts dead or hung workers.
        "workers": settings.web_concurrency,
        # How long the supervisor waits for a worker to answer its ping, and for a new worker to be
        # ready during a SIGHUP rolling restart. The default 5 s aborts restarts on a busy host, where
        # importing the app alone can take that long; 30 s matches Gunicorn's worker timeout.
        "timeout_worker_healthcheck": WORKER_HEALTHCHECK_TIMEOUT,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "timeout_keep_alive": settings.keep_alive_timeout,
        # Uvicorn waits forever for open connections by default; bound it.
        "timeout_graceful_shutdown": settings.graceful_timeout,
        # Past this many connections plus in-flight requests per worker: an immediate 503.
        "limit_concurrency": settings.limit_concurrency or None,
        # Request line plus headers: the httptools protocol of http_protocol.py enforces it, and h11
        # (if chosen with --http h11) through its own limit.
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "log_config": logging_config(settings),
        "log_level": settings.log_level,
        # The app's middleware writes a cheaper access line (with the request id).
        "access_log": False,
        "server_header": False,
        # uvloop and httptools (from uvicorn[standard]); httptools with a header size limit.
        "loop": "auto",
        "http": HTTP_PROTOCOL,
    }


def exit_successfully(signum: int, frame: FrameType | None) -> None:
    """A requested stop is a success: exit 0 rather than die by the signal."""
    raise SystemExit(0)


def keep_serving_on_reload(signum: int, frame: FrameType | None) -> None:
    """SIGHUP (`systemctl reload`) to a single process: there is no worker to roll over to."""
    logging.getLogger("uvicorn.error").warning(
        "SIGHUP ignored: one Uvicorn process cannot reload; with WEB_CONCURRENCY > 1 it restarts its workers in turn"
    )


def load_app() -> ASGIApp:
    """Import the app. A failure exits with Uvicorn's startup-failure code, which tells its supervisor
    to stop: any other exit code (an import error gives 1) makes it restart the worker forever."""
    try:
        from {{ cookiecutter.package_name }}.main import app  # noqa: PLC0415  # imported in the worker, not by the supervisor
    except Exception:
        logging.getLogger("uvicorn.error").exception("The app failed to load")
        logging.shutdown()
        # At once, without the interpreter's slow exit: meanwhile the worker's thread that answers
        # the supervisor's health pings is already gone, and a ping sent then waits out the whole
        # timeout_worker_healthcheck (30 s) before the supervisor sees the exit code.
        os._exit(STARTUP_FAILURE)
    return app


class Supervisor(Multiprocess):
    """Uvicorn's worker supervisor, which also closes its copy of each worker's end of the
    health-check pipe before checking. Uvicorn keeps both ends open in the supervisor, so a worker
    that dies while a check is on its way (one that failed to start, say) is noticed only when the
    whole timeout_worker_healthcheck (30 s) has passed, not at once by the pipe's end of file.
    (Upstream rework of this channel: https://github.com/Kludex/uvicorn/pull/3082.)"""

    def keep_subprocess_alive(self) -> None:
        for process in self.processes:
            # Started workers hold their own copy; getattr: this is Uvicorn's internal attribute.
            workers_end = getattr(process, "child_conn", None)
            if workers_end is not None:
                workers_end.close()  # a no-op when closed already
        super().keep_subprocess_alive()


def serve(config: uvicorn.Config) -> bool:
    """Run Uvicorn as uvicorn.run() does; whether it started. (uvicorn.run() cannot say: with workers
    it returns normally even when they failed to start, and the process would exit 0.)"""
    if config.workers > 1:
        supervisor = Supervisor(config, sockets=[config.bind_socket()])
        supervisor.run()
        # The supervisor stops when a worker fails to start, and keeps that worker in its list.
        return all(process.exitcode != STARTUP_FAILURE for process in supervisor.processes)
    server = uvicorn.Server(config)
    server.run()
    return server.started


def main() -> None:
    settings = load_settings_or_exit()
    # After its graceful shutdown, a single Uvicorn process re-raises the stop signal (SIGTERM, or
    # SIGINT from Ctrl-C) with these handlers in place; without them the process dies by the signal,
    # which `make run` and `docker run --init` report as a failure, or prints a KeyboardInterrupt
    # traceback. (With workers, Uvicorn's supervisor installs its own handlers and exits 0.)
    signal.signal(signal.SIGTERM, exit_successfully)
    signal.signal(signal.SIGINT, exit_successfully)
    # A single Uvicorn process does not handle SIGHUP, which would kill it: the systemd unit's
    # ExecReload would crash the service. (With workers the supervisor handles it: rolling restart.)
    signal.signal(signal.SIGHUP, keep_serving_on_reload)
    if not serve(uvicorn.Config(APP_LOADER, **uvicorn_options(settings))):
        sys.exit(STARTUP_FAILURE)
