"""`python -m {{ cookiecutter.package_name }}`: Gunicorn managing Uvicorn workers, configured by gunicorn_conf.py.

It checks the settings once (one line per bad one, exit 2), then becomes
`gunicorn --config python:{{ cookiecutter.package_name }}.serving.gunicorn_conf` in the same process, so that
systemd's and Docker's signals reach Gunicorn's master directly.
"""

import argparse
import os
import sys
{%- if cookiecutter.metrics == "yes" %}
import tempfile
{%- endif %}

from {{ cookiecutter.package_name }}.settings import load_settings_or_exit

CONFIG = "python:{{ cookiecutter.package_name }}.serving.gunicorn_conf"


def gunicorn_command(*, reload: bool = False) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--config", CONFIG, *(["--reload"] if reload else [])]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m {{ cookiecutter.package_name }}")
    parser.add_argument("--reload", action="store_true", help="restart workers on code changes (development)")
    reload = parser.parse_args().reload
{%- if cookiecutter.metrics == "yes" %}
    if load_settings_or_exit().metrics_port:
        # Before Gunicorn starts (and imports prometheus_client, which reads it at import): Gunicorn's
        # workers write their metrics in files there; its master sums them (gunicorn_conf.py).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="metrics-")
{%- else %}
    load_settings_or_exit()
{%- endif %}
    command = gunicorn_command(reload=reload)
    os.execv(command[0], command)  # noqa: S606  # nosec B606  # a fixed command, no shell
