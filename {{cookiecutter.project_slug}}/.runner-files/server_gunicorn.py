"""Serve the app with Gunicorn managing Uvicorn workers, configured by ./gunicorn.conf.py.

`make run` and the systemd unit both start this (`python -m <package>`), the same as running
`gunicorn --config gunicorn.conf.py` from the project folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gunicorn.app.wsgiapp import run  # type: ignore[import-untyped]  # gunicorn ships no type hints

from {{ cookiecutter.package_name }}.settings import load_settings_or_exit

CONFIG_FILE = Path("gunicorn.conf.py")


def main() -> None:
    # Check the settings before Gunicorn starts: one line per bad setting, not a traceback per worker.
    load_settings_or_exit()
    if not CONFIG_FILE.is_file():
        print(f"error: {CONFIG_FILE} not found in {Path.cwd()}: run from the project folder", file=sys.stderr)
        raise SystemExit(2)
    sys.argv = ["gunicorn", "--config", str(CONFIG_FILE)]
    run()
