"""Gunicorn's settings, all from the service's Settings (so from the environment).

server.py starts `gunicorn --config python:{{ cookiecutter.package_name }}.serving.gunicorn_conf`; GUNICORN_CMD_ARGS
overrides any of these without editing the file. Why each value: docs/operations.md.
"""

import gc
import os
import signal
import socket
import sys
from typing import Any

{% if cookiecutter.metrics == "yes" -%}
from {{ cookiecutter.package_name }}.serving import metrics
{% endif -%}
from {{ cookiecutter.package_name }}.serving.logging_config import logging_config
from {{ cookiecutter.package_name }}.settings import load_settings_or_exit

settings = load_settings_or_exit()

wsgi_app = "{{ cookiecutter.package_name }}.main:app"
worker_class = "{{ cookiecutter.package_name }}.serving.gunicorn_worker.UvicornWorker"
ipv6_host = ":" in settings.host
bind = [f"[{settings.host}]:{settings.port}" if ipv6_host else f"{settings.host}:{settings.port}"]
# WEB_CONCURRENCY, never a raw CPU count (inside a container that is the host's).
workers = settings.web_concurrency
# With several workers each listens on its own socket and the kernel spreads connections evenly
# (on one shared socket one worker can take a whole burst). A retiring worker serves what is queued
# on its socket (serving/protocol.py); handshakes still in progress move with sysctl net.ipv4.tcp_migrate_req=1.
reuse_port = workers > 1
# For async workers a heartbeat, not a request timeout: a worker blocked this long is replaced.
timeout = 30
graceful_timeout = settings.graceful_timeout
keepalive = settings.keep_alive_timeout
# No recycling after a number of requests: under load it bunched clients on the other workers.
# Switch it on for a leak: GUNICORN_CMD_ARGS="--max-requests 1000000 --max-requests-jitter 500000".
max_requests = 0
# Heartbeat files on a RAM disk, so a slow disk cannot look like a hung worker.
RAM_DISK = "/dev/shm"  # noqa: S108  # nosec B108  # only Gunicorn's heartbeat files
worker_tmp_dir = RAM_DISK if os.path.isdir(RAM_DISK) else None
forwarded_allow_ips = settings.forwarded_allow_ips
logconfig_dict = logging_config(settings)
accesslog = None  # the app's middleware writes the access log
# Gunicorn 27's control socket defaults to one path per user: two instances would collide.
control_socket_disable = True


def on_starting(server: Any) -> None:
    """A taken address stops Gunicorn at once with one line and exit code 3, a failed startup, as
    Uvicorn does (not code 1 after five tries, which systemd restarts); with reuse_port, rather than
    let a second instance share the port (SO_REUSEPORT allows that)."""
    with socket.socket(socket.AF_INET6 if ipv6_host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port left in TIME_WAIT is free
        try:
            probe.bind((settings.host, settings.port))
        except OSError as error:
            print(f"error: cannot listen on {bind[0]}: {error.strerror}", file=sys.stderr)
            raise SystemExit(3) from None


def when_ready(server: Any) -> None:
    if reuse_port:  # the master listens on nothing, so its own "Listening at" line is empty
        server.log.info("Workers listening at: %s (a socket each)", ", ".join(f"http://{address}" for address in bind))
{%- if cookiecutter.metrics == "yes" %}
    if settings.metrics_port:  # the master serves the sum of its workers' metrics (serving/metrics.py)
        metrics.serve(settings.host, settings.metrics_port, lambda: list(server.WORKERS))
{%- endif %}


def worker_int(worker: Any) -> None:
    # Gunicorn's reloader (`make dev`) calls this when a file changed; a Uvicorn worker stops on SIGTERM.
    os.kill(worker.pid, signal.SIGTERM)


def post_worker_init(worker: Any) -> None:
    gc.collect()
    gc.freeze()  # start-up objects live as long as the worker: out of the collector's way (docs/operations.md)
{%- if cookiecutter.metrics == "yes" %}
    if settings.metrics_port:
        worker.wsgi = metrics.MetricsMiddleware(worker.wsgi)


def child_exit(server: Any, worker: Any) -> None:
    metrics.forget_worker(worker.pid)


def on_exit(server: Any) -> None:
    metrics.remove_folder()
{%- endif %}
