"""Serve the app with Uvicorn: the one place the production server's options are set.

`make run`, the systemd unit and the Docker image's CMD all start this (`python -m <package>`), so
every way of running the service uses the same options.
"""

from __future__ import annotations

from typing import Any

import uvicorn

from {{ cookiecutter.package_name }}.http_limits import HTTP_PROTOCOL
from {{ cookiecutter.package_name }}.logging_config import logging_config
from {{ cookiecutter.package_name }}.settings import Settings, load_settings_or_exit

APP = "{{ cookiecutter.package_name }}.main:app"


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        # More than 1 runs Uvicorn's supervisor, which restarts dead or hung workers.
        "workers": settings.web_concurrency,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "timeout_keep_alive": settings.keep_alive_timeout,
        # Uvicorn waits forever for open connections by default; bound it.
        "timeout_graceful_shutdown": settings.graceful_timeout,
        # Past this many connections plus in-flight requests per worker: an immediate 503.
        "limit_concurrency": settings.limit_concurrency or None,
        # Request line plus headers: the httptools protocol of http_limits.py enforces it, and h11
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


def main() -> None:
    settings = load_settings_or_exit()
    uvicorn.run(APP, **uvicorn_options(settings))
