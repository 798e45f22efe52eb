"""`python -m {{ cookiecutter.package_name }}`: Granian, through its Python API (`granian.Granian`) and documented options, all from the settings."""

import argparse
{%- if cookiecutter.metrics == "yes" %}
import contextlib
{%- endif %}
import importlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
{%- if cookiecutter.metrics == "yes" %}
import tempfile
{%- endif %}
from collections.abc import Callable
from functools import partial
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from granian import Granian
from granian.constants import Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.utils.proxies import wrap_asgi_with_proxy_headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.package_name }}.serving.logging_config import logging_config
from {{ cookiecutter.package_name }}.settings import Settings, load_settings_or_exit

APP = "{{ cookiecutter.package_name }}.main:app"


def granian_options(settings: Settings) -> dict[str, Any]:
    return {
        "address": settings.host,
        "port": settings.port,
        "interface": Interfaces.ASGI,  # Granian's default is its own RSGI
        "workers": settings.web_concurrency,  # always worker processes, even one, under Granian's main process
        "respawn_failed_workers": True,  # Granian's default: stop serving when a worker dies
        "workers_kill_timeout": settings.graceful_timeout,  # Granian's default: wait forever
        # The header read timeout also closes idle keep-alive connections (measured): outlast a balancer's.
        "http1_settings": HTTP1Settings(header_read_timeout=settings.keep_alive_timeout * 1000, max_buffer_size=65_536),
        # Open connections per worker, idle ones too, past which Granian stops accepting (its default, 1024,
        # lets idle sockets stop the service): the systemd unit's LimitNOFILE. Requests: the app's limit.
        "backpressure": 65_536 // settings.web_concurrency,
        "url_path_prefix": settings.root_path or None,  # a proxy's path prefix, the server's to set (FastAPI's docs)
        "log_dictconfig": logging_config(settings),
        "log_level": LogLevels(settings.log_level),
        "log_access": False,  # the app writes it, with the request id
    }


def exit_if_the_port_is_taken(settings: Settings) -> None:  # one line, exit 3 (a failed start), before the app starts
    # Granian binds with SO_REUSEPORT, so a second instance on a taken port would share it: check without.
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    try:  # create_server() sets SO_REUSEADDR: a port left in TIME_WAIT is free
        socket.create_server((settings.host, settings.port), family=family).close()
    except OSError as error:
        print(f"error: {error.strerror}", file=sys.stderr)  # "Address already in use (while ... address (host, port))"
        raise SystemExit(3) from None


def stop_the_server(failed: Event | None) -> None:
    """From a worker whose app failed to start: Granian would start it again; its main process stops instead."""
    if failed is not None:
        failed.set()
        os.kill(os.getppid(), signal.SIGTERM)


def watch_the_start(app: ASGIApp, failed: Event | None) -> ASGIApp:
    """The app, whose lifespan start-up failure stops the server (Granian's worker alone would exit 1)."""

    def watched_app(scope: Scope, receive: Receive, send: Send) -> Any:
        async def watched_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                stop_the_server(failed)
            await send(message)

        return app(scope, receive, watched_send if scope["type"] == "lifespan" else send)

    return watched_app


def load_app(settings: Settings, failed: Event | None, target: str) -> Any:
    """Granian's `target_loader`, in each worker: the app behind the trusted proxies' forwarded headers."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the main process's handler: a stop while importing stops it
    module, name = target.split(":")
    try:
        app = getattr(importlib.import_module(module), name)
    except Exception:
        logging.getLogger(__name__).exception("the app failed to import")
        stop_the_server(failed)
        raise SystemExit(3) from None
    return wrap_asgi_with_proxy_headers(watch_the_start(app, failed), trusted_hosts=settings.forwarded_allow_ips)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m {{ cookiecutter.package_name }}")
    parser.add_argument("--reload", action="store_true", help="restart on changes in src/ (development; one worker)")
    reload = parser.parse_args().reload
    settings = load_settings_or_exit()
    exit_if_the_port_is_taken(settings)
    options = granian_options(settings)
    if reload:  # a failed app waits for the next change instead of stopping the server
        options |= {"workers": 1, "reload": True, "reload_paths": [Path("src")], "reload_ignore_worker_failure": True}
    failed = None if reload else multiprocessing.Event()  # set by a worker whose app failed to start
{%- if cookiecutter.metrics == "yes" %}
    metrics: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if settings.metrics_port:  # the workers write their values in files there; this process sums them
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="metrics-")
        # Imported only now: prometheus_client reads PROMETHEUS_MULTIPROC_DIR at import.
        from {{ cookiecutter.package_name }}.serving.metrics import endpoint  # noqa: PLC0415

        metrics = endpoint(settings.host, settings.metrics_port)
    with metrics:
        serve(options, partial(load_app, settings, failed), failed)
{%- else %}
    serve(options, partial(load_app, settings, failed), failed)
{%- endif %}


def serve(options: dict[str, Any], loader: Callable[[str], Any], failed: Event | None) -> None:
    try:
        Granian(APP, **options).serve(target_loader=loader)
    finally:  # Granian exits 1 when a worker died; 3 when it was a failed start, which restarting cannot fix
        if failed is not None and failed.is_set():
            raise SystemExit(3)
