"""Serve the app with Gunicorn managing Uvicorn workers, configured by ./gunicorn.conf.py.

`make run` and the systemd unit both start this (`python -m <package>`), the same as running
`gunicorn --config gunicorn.conf.py` from the project folder.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import uvicorn_worker  # type: ignore[import-untyped]  # ships no type hints
from gunicorn.app.wsgiapp import run  # type: ignore[import-untyped]  # gunicorn ships no type hints

from {{ cookiecutter.package_name }}.settings import load_settings_or_exit

CONFIG_FILE = Path("gunicorn.conf.py")


class UvicornWorker(uvicorn_worker.UvicornWorker):  # type: ignore[misc]  # its base is untyped
    """uvicorn-worker's worker (gunicorn.conf.py names this class), handed Gunicorn's plain sockets.

    uvloop closes a listening socket it serves itself; handed Gunicorn's wrapper instead of the socket,
    it then closes the wrapper too, and every worker logs "Error while closing socket [Errno 9] Bad
    file descriptor" at shutdown. A plain socket it just detaches.
    """

    sockets: list[Any]  # Gunicorn's listeners, set by the base class

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sockets = [getattr(listener, "sock", listener) for listener in self.sockets]


def main() -> None:
    # Check the settings before Gunicorn starts: one line per bad setting, not a traceback per worker.
    load_settings_or_exit()
    if not CONFIG_FILE.is_file():
        print(f"error: {CONFIG_FILE} not found in {Path.cwd()}: run from the project folder", file=sys.stderr)
        raise SystemExit(2)
    sys.argv = ["gunicorn", "--config", str(CONFIG_FILE)]
    run()
