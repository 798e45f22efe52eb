"""How the app is served: rarely edited, and nothing in the app imports from here.

- server.py: `python -m {{ cookiecutter.package_name }}` starts the production server with every option set
  from the settings (the one run command of `make run`, `make dev`, the systemd unit and the image).
- protocol.py: Uvicorn's HTTP protocol with a header size limit and a drain that loses no request.
- logging_config.py: one logging setup for the app and the server, text or JSON lines.
{%- if cookiecutter.runner == "gunicorn" %}
- gunicorn_conf.py, gunicorn_worker.py: Gunicorn's settings and its Uvicorn worker with the same limits.
{%- endif %}
{%- if cookiecutter.runner == "docker" %}
- healthcheck.py: the container's health check.
{%- endif %}

Where an upstream bug leaves no public way, the workaround names the issue; docs/operations.md lists
them all, with the condition for deleting each.
"""

from __future__ import annotations

import contextlib
import gc

# Python collects the young generation every 700 new container objects, less than a busy worker's
# requests in flight hold: under load that was 100 passes a second (docs/operations.md).
YOUNG_COLLECTION_THRESHOLD = 10_000


def tune_garbage_collector() -> None:
    """Once per worker, after the app is loaded: keep start-up objects out of every later pass."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


def raise_open_files_limit() -> None:
    """Each connection is an open file: lift the soft limit (often 1,024) to the hard one."""
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource  # noqa: PLC0415  # Unix only

        resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
