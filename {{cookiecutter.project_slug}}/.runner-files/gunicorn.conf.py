"""Gunicorn settings, all derived from the service's Settings (so from the environment).

Check it with `gunicorn --check-config --config gunicorn.conf.py`.
"""

from __future__ import annotations

import os

from {{ cookiecutter.package_name }}.logging_config import logging_config
from {{ cookiecutter.package_name }}.settings import load_settings_or_exit

settings = load_settings_or_exit()

wsgi_app = "{{ cookiecutter.package_name }}.main:app"
# An IPv6 host needs brackets in a bind address.
bind = [f"[{settings.host}]:{settings.port}" if ":" in settings.host else f"{settings.host}:{settings.port}"]
# WEB_CONCURRENCY (default 1), never a raw CPU count: inside a container that is the host's count.
# On a VM, one async worker per core you give the service is the usual choice.
workers = settings.web_concurrency
# Uvicorn workers with the service's limits (gunicorn_worker.py): the stock worker passes no
# concurrency, header size or graceful-shutdown limit.
worker_class = "{{ cookiecutter.package_name }}.gunicorn_worker.LimitedUvicornWorker"

# For async workers this is a heartbeat, not a request timeout: a worker whose event loop is blocked
# this long (blocking code in an async handler) is killed and replaced.
timeout = 30
graceful_timeout = settings.graceful_timeout
keepalive = settings.keep_alive_timeout
# Recycle workers now and then so slow leaks cannot grow forever; jitter keeps them from all
# restarting at once. A retiring worker drains without failing a request (http_protocol.py). With a
# single worker, though, Gunicorn starts the replacement only once the old one has gone, so every
# recycle would pause the service while the app imports: no recycling then.
max_requests = 100_000 if workers > 1 else 0
max_requests_jitter = 10_000
# Heartbeat files on a RAM disk: a slow or full disk must not look like a hung worker.
# Only Gunicorn's own heartbeat files live here (ruff S108 and bandit B108 flag any /dev/shm path).
RAM_DISK = "/dev/shm"  # noqa: S108  # nosec B108
worker_tmp_dir = RAM_DISK if os.path.isdir(RAM_DISK) else None
forwarded_allow_ips = settings.forwarded_allow_ips

logconfig_dict = logging_config(settings)
accesslog = None  # the app's middleware writes the access log

# Gunicorn 27's control socket defaults to one path per user, so two instances of one user collide.
control_socket_disable = True
