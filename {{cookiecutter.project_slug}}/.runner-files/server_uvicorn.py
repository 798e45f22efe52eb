"""Serve the app with Uvicorn: the one place the production server's options are set.

`make run`, the systemd unit and the Docker image's CMD all start this (`python -m <package>`), so
every way of running the service uses the same options.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Any

import uvicorn

from {{ cookiecutter.package_name }}.http_protocol import HTTP_PROTOCOL
from {{ cookiecutter.package_name }}.logging_config import logging_config
from {{ cookiecutter.package_name }}.settings import Settings, load_settings_or_exit

APP = "{{ cookiecutter.package_name }}.main:app"
WORKER_HEALTHCHECK_TIMEOUT = 30


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
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


def main() -> None:
    settings = load_settings_or_exit()
    # After its graceful shutdown, a single Uvicorn process re-raises SIGTERM with this handler in
    # place; without it the process dies by the signal, which `make run` and `docker run --init`
    # report as a failure. (With workers, Uvicorn's supervisor installs its own handlers and exits 0.)
    signal.signal(signal.SIGTERM, exit_successfully)
    # A single Uvicorn process does not handle SIGHUP, which would kill it: the systemd unit's
    # ExecReload would crash the service. (With workers the supervisor handles it: rolling restart.)
    signal.signal(signal.SIGHUP, keep_serving_on_reload)
    uvicorn.run(APP, **uvicorn_options(settings))
