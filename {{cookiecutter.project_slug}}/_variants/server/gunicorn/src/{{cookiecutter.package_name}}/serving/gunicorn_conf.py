"""Gunicorn's settings, all from the service's Settings (so from the environment).

server.py starts `gunicorn --config python:{{ cookiecutter.package_name }}.serving.gunicorn_conf`; GUNICORN_CMD_ARGS
overrides any of these without editing the file. Why each value: docs/operations.md.
"""

import os
import signal
import socket
import sys
from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]  # no type hints shipped
{% if cookiecutter.metrics == "yes" %}
from {{ cookiecutter.package_name }}.serving import metrics  # after server.py set PROMETHEUS_MULTIPROC_DIR
{%- endif %}
from {{ cookiecutter.package_name }}.serving.logging_config import logging_config
from {{ cookiecutter.package_name }}.settings import load_settings_or_exit

settings = load_settings_or_exit()


class Worker(UvicornWorker):  # type: ignore[misc]  # base class is untyped
    """uvicorn-worker's, with the Uvicorn options Gunicorn has no setting for (its documented CONFIG_KWARGS)."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **UvicornWorker.CONFIG_KWARGS,
        "timeout_graceful_shutdown": settings.graceful_timeout,
        "server_header": False,
        "root_path": settings.root_path,  # a proxy's path prefix, the server's to set (FastAPI's docs)
        "access_log": False,  # the app writes it, with the request id
    }


wsgi_app = "{{ cookiecutter.package_name }}.main:app"
worker_class = f"{__name__}.Worker"
ipv6_host = ":" in settings.host
bind = [f"[{settings.host}]:{settings.port}" if ipv6_host else f"{settings.host}:{settings.port}"]
workers = settings.web_concurrency  # never a raw CPU count (inside a container that is the host's)
timeout = 30  # for async workers a heartbeat, not a request timeout: a worker blocked this long is replaced
graceful_timeout = settings.graceful_timeout
keepalive = settings.keep_alive_timeout
RAM_DISK = "/dev/shm"  # noqa: S108  # nosec B108  # heartbeat files: a slow disk cannot look like a hung worker
worker_tmp_dir = RAM_DISK if os.path.isdir(RAM_DISK) else None
forwarded_allow_ips = settings.forwarded_allow_ips
logconfig_dict = logging_config(settings)
accesslog = None  # the app writes the access log, with the request id
control_socket_disable = True  # Gunicorn 27's control socket is one path per user: two instances would collide


def on_starting(server: Any) -> None:
    """A taken address stops Gunicorn at once with one line and exit code 3 (a failed start-up, as
    Uvicorn's), not code 1 after five tries, which systemd would restart."""
    with socket.socket(socket.AF_INET6 if ipv6_host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port left in TIME_WAIT is free
        try:
            probe.bind((settings.host, settings.port))
        except OSError as error:
            print(f"error: cannot listen on {bind[0]}: {error.strerror}", file=sys.stderr)
            raise SystemExit(3) from None


def worker_int(worker: Any) -> None:
    # Gunicorn's reloader (`make dev`) calls this when a file changed; a Uvicorn worker stops on SIGTERM.
    os.kill(worker.pid, signal.SIGTERM)
{%- if cookiecutter.metrics == "yes" %}


def when_ready(server: Any) -> None:
    if settings.metrics_port:
        metrics.serve(settings.host, settings.metrics_port)  # from the master: the sum of its workers' files


def child_exit(server: Any, worker: Any) -> None:
    metrics.forget(worker.pid)  # its requests no longer count as in flight (its counts still do)


def on_exit(server: Any) -> None:
    metrics.remove_folder()
{%- endif %}
