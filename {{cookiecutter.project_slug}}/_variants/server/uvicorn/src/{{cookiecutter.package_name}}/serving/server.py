"""`python -m {{ cookiecutter.package_name }}`: Uvicorn, through `uvicorn.run()` and its documented options, all from the settings."""

import argparse
{%- if cookiecutter.metrics == "yes" %}
import contextlib
{%- endif %}
import importlib
{%- if cookiecutter.metrics == "yes" %}
import os
{%- endif %}
import signal
import socket
import sys
{%- if cookiecutter.metrics == "yes" %}
import tempfile
{%- endif %}
from typing import Any

import uvicorn

from {{ cookiecutter.package_name }}.serving.logging_config import logging_config
from {{ cookiecutter.package_name }}.settings import Settings, load_settings_or_exit


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        "workers": settings.web_concurrency,  # more than 1: Uvicorn's supervisor restarts dead workers
        "timeout_worker_healthcheck": 30,  # Uvicorn's 5 s aborts SIGHUP restarts on a busy host
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "root_path": settings.root_path,  # a proxy's path prefix, the server's to set (FastAPI's docs)
        "timeout_keep_alive": settings.keep_alive_timeout,
        "timeout_graceful_shutdown": settings.graceful_timeout,  # Uvicorn's default: wait forever
        "log_config": logging_config(settings),
        "log_level": settings.log_level,
        "access_log": False,  # the app writes it, with the request id
        "server_header": False,
    }


def exit_if_the_port_is_taken(settings: Settings) -> None:  # one line, exit 3 (a failed start), before the app starts
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    try:  # create_server() sets SO_REUSEADDR: a port left in TIME_WAIT is free
        socket.create_server((settings.host, settings.port), family=family).close()
    except OSError as error:
        print(f"error: {error.strerror}", file=sys.stderr)  # "Address already in use (while ... address (host, port))"
        raise SystemExit(3) from None


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m {{ cookiecutter.package_name }}")
    parser.add_argument("--reload", action="store_true", help="restart on changes in src/ (development; one process)")
    reload = parser.parse_args().reload
    settings = load_settings_or_exit()
    exit_if_the_port_is_taken(settings)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: sys.exit(0))  # a requested stop: not death by the signal Uvicorn re-raises
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # one process; with workers, the supervisor's: a rolling restart
    options = uvicorn_options(settings) | ({"reload": True, "reload_dirs": ["src"]} if reload else {})
{%- if cookiecutter.metrics == "yes" %}
    metrics: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if settings.metrics_port:
        if settings.web_concurrency > 1 or reload:  # workers: each writes files there, this process sums them
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="metrics-")
        # Imported only now: prometheus_client reads PROMETHEUS_MULTIPROC_DIR at import.
        from {{ cookiecutter.package_name }}.serving.metrics import endpoint  # noqa: PLC0415

        metrics = endpoint(settings.host, settings.metrics_port)
    with metrics:
        # A broken app fails here, once, rather than in every worker (which the supervisor would restart).
        importlib.import_module("{{ cookiecutter.package_name }}.main")
        uvicorn.run("{{ cookiecutter.package_name }}.main:app", **options)
{%- else %}
    # A broken app fails here, once, rather than in every worker (which the supervisor would restart).
    importlib.import_module("{{ cookiecutter.package_name }}.main")
    uvicorn.run("{{ cookiecutter.package_name }}.main:app", **options)
{%- endif %}
