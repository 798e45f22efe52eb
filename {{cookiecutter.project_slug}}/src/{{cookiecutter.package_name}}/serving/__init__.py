"""How the app is served; rarely edited, and the app imports nothing from here. server.py starts
the server (`python -m {{ cookiecutter.package_name }}`), protocol.py adds what Uvicorn's HTTP protocol lacks,
logging_config.py sets up logging for app and server alike. docs/operations.md says why each
default, and lists the workarounds for upstream bugs with when to delete each.
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
