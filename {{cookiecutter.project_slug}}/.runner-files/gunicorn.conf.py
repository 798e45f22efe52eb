"""Gunicorn settings, all derived from the service's Settings (so from the environment).

Check it with `gunicorn --check-config --config gunicorn.conf.py`.
"""

from __future__ import annotations

import os
import socket

from {{ cookiecutter.package_name }}.logging_config import logging_config
from {{ cookiecutter.package_name }}.settings import load_settings_or_exit

settings = load_settings_or_exit()

wsgi_app = "{{ cookiecutter.package_name }}.main:app"
ipv6_host = ":" in settings.host
# An IPv6 host needs brackets in a bind address.
bind = [f"[{settings.host}]:{settings.port}" if ipv6_host else f"{settings.host}:{settings.port}"]
# WEB_CONCURRENCY (default 1), never a raw CPU count: inside a container that is the host's count.
# On a VM, one async worker per core you give the service is the usual choice.
workers = settings.web_concurrency
# With several workers, each listens on its own socket (SO_REUSEPORT) and the kernel spreads new
# connections evenly over them. On one shared socket the worker that wakes first takes what is
# waiting, so a burst of keep-alive connections (a load balancer's pool, a load test) can all land on
# one worker while the others idle (benoitc/gunicorn#3071). The cost: connections still queued on a
# retiring worker's socket are reset, unless Linux moves them (sysctl net.ipv4.tcp_migrate_req=1).
# One worker keeps the master's socket: its queue then survives the worker's replacement.
reuse_port = workers > 1
# Uvicorn workers with the service's limits (gunicorn_worker.py): the stock worker passes no
# concurrency, header size or graceful-shutdown limit.
worker_class = "{{ cookiecutter.package_name }}.gunicorn_worker.LimitedUvicornWorker"

# For async workers this is a heartbeat, not a request timeout: a worker whose event loop is blocked
# this long (blocking code in an async handler) is killed and replaced.
timeout = 30
graceful_timeout = settings.graceful_timeout
keepalive = settings.keep_alive_timeout
# No recycling after a number of requests (Gunicorn's default, said here because templates often
# switch it on). An async worker serves thousands of requests a second: at 100,000 each worker was
# recycled every 15 s under load, equally loaded workers hit their limits within a second of each
# other (with 10 % jitter), and a recycled worker's keep-alive clients reconnect to the other workers
# and stay there, so the new worker idles. With a single worker, Gunicorn starts the replacement
# only once the old one has gone: a pause in service. For a leak you cannot fix yet, switch it on
# without editing this file: GUNICORN_CMD_ARGS="--max-requests 1000000 --max-requests-jitter 500000".
max_requests = 0
# Heartbeat files on a RAM disk: a slow or full disk must not look like a hung worker.
# Only Gunicorn's own heartbeat files live here (ruff S108 and bandit B108 flag any /dev/shm path).
RAM_DISK = "/dev/shm"  # noqa: S108  # nosec B108
worker_tmp_dir = RAM_DISK if os.path.isdir(RAM_DISK) else None
forwarded_allow_ips = settings.forwarded_allow_ips

logconfig_dict = logging_config(settings)
accesslog = None  # the app's middleware writes the access log

# Gunicorn 27's control socket defaults to one path per user, so two instances of one user collide.
control_socket_disable = True


def on_starting(server: object) -> None:
    """With reuse_port the workers bind, not the master: check first that nothing listens on the
    address yet. A taken port then stops Gunicorn at once with one line, and a second instance cannot
    join the first one's port (SO_REUSEPORT allows that for the same user) and take half its traffic."""
    if not reuse_port:
        return
    family = socket.AF_INET6 if ipv6_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port left in TIME_WAIT is free
        try:
            probe.bind((settings.host, settings.port))
        except OSError as error:
            raise SystemExit(f"error: cannot listen on {bind[0]}: {error.strerror}") from None
