"""Start the production server: Gunicorn managing Uvicorn workers, configured by gunicorn_conf.py.

`python -m {{ cookiecutter.package_name }}` runs main(): `make run`, the systemd unit and (with reload) `make dev`.
It checks the settings once, then becomes `gunicorn --config python:<this package>.serving.gunicorn_conf`
(the same process: systemd's signals reach Gunicorn's master directly).
"""

import argparse
import os
import sys
{%- if cookiecutter.metrics == "yes" %}
import tempfile
{%- endif %}

from {{ cookiecutter.package_name }}.settings import load_settings_or_exit

PROG = "python -m {{ cookiecutter.package_name }}"
CONFIG = "python:{{ cookiecutter.package_name }}.serving.gunicorn_conf"


def gunicorn_command(*, reload: bool = False) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "--config", CONFIG, *(["--reload"] if reload else [])]


def main() -> None:
    parser = argparse.ArgumentParser(prog=PROG, description="Serve the app.")
    parser.add_argument("--reload", action="store_true", help="restart workers on code changes (development)")
    reload = parser.parse_args().reload
    # One line per bad setting here, rather than a traceback from Gunicorn's config loading.
{%- if cookiecutter.metrics == "yes" %}
    settings = load_settings_or_exit()
    if settings.metrics_port:
        # This run's new folder for the workers' metrics (serving/metrics.py, which removes it at
        # exit), set before Gunicorn loads prometheus-client: it reads the variable once, at import.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="metrics-")
{%- else %}
    load_settings_or_exit()
{%- endif %}
    command = gunicorn_command(reload=reload)
    os.execv(command[0], command)  # noqa: S606  # nosec B606  # a fixed command, no shell
