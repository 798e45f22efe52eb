"""`python -m {{ cookiecutter.package_name }}` (`make run`, `make dev`, {% if cookiecutter.runner == "docker" %}the image{% else %}the systemd unit{% endif %}): Uvicorn with every option from the settings."""

import argparse
import gc
import logging
import os
import signal
import sys
from types import FrameType
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import ChangeReload, Multiprocess, multiprocess

{% if cookiecutter.metrics == "yes" -%}
from {{ cookiecutter.package_name }}.serving import metrics
{% endif -%}
from {{ cookiecutter.package_name }}.serving.logging_config import logging_config
from {{ cookiecutter.package_name }}.serving.protocol import HttpProtocol, Server
from {{ cookiecutter.package_name }}.settings import Settings, {% if cookiecutter.metrics == "yes" %}get_settings, {% endif %}load_settings_or_exit

PROG = "python -m {{ cookiecutter.package_name }}"
APP_LOADER = f"{__name__}:load_app"  # each worker imports the app through it (factory=True)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "workers": settings.web_concurrency,  # more than 1: Uvicorn's supervisor restarts dead workers
        "timeout_worker_healthcheck": 30,  # Uvicorn's 5 s aborts SIGHUP restarts on a busy host
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "timeout_keep_alive": settings.keep_alive_timeout,
        "timeout_graceful_shutdown": settings.graceful_timeout,  # Uvicorn's default: wait forever
        "h11_max_incomplete_event_size": settings.max_header_bytes,  # protocol.py does it for httptools
        "http": HttpProtocol,
        "log_config": logging_config(settings),
        "log_level": settings.log_level,
        "access_log": False,  # the app's middleware writes it, with the request id
        "server_header": False,
    }


def load_app() -> ASGIApp:
    """Import the app in a worker; a failure exits with the startup-failure code, the one that stops the supervisor."""
    try:
        from {{ cookiecutter.package_name }}.main import app  # noqa: PLC0415  # in the worker, not the supervisor
    except Exception:
        logging.getLogger("uvicorn.error").exception("The app failed to load")
        logging.shutdown()
        os._exit(STARTUP_FAILURE)  # at once: a slow exit leaves the supervisor's ping unanswered for 30 s
    gc.collect()
    gc.freeze()  # start-up objects live as long as the worker: out of the collector's way (docs/operations.md)
{%- if cookiecutter.metrics == "yes" %}
    return metrics.MetricsMiddleware(app) if get_settings().metrics_port else app
{%- else %}
    return app
{%- endif %}


class Worker(multiprocess.Process):
    @property
    def server(self) -> uvicorn.Server:  # each worker's: serving.protocol.Server, not Uvicorn's
        self._server = self._server or Server(config=self.config)
        return self._server


multiprocess.Process = Worker  # type: ignore[misc]  # Uvicorn 0.54's supervisor has no option for its worker class


class Supervisor(Multiprocess):
    """Uvicorn's supervisor, closing its copies of the listening socket and the workers' pipes (0.54 workarounds)."""

    def terminate_all(self) -> None:
        for listener in self.sockets:
            listener.close()
        super().terminate_all()

    def keep_subprocess_alive(self) -> None:
        for process in self.processes:
            workers_end = getattr(process, "child_conn", None)  # Uvicorn's internal attribute
            if workers_end is not None:
                workers_end.close()
        super().keep_subprocess_alive()
{%- if cookiecutter.metrics == "yes" %}
        for pid in self.known_pids.difference(self.worker_pids()):  # died, or replaced on SIGHUP
            metrics.forget_worker(pid)
        self.known_pids = frozenset(self.worker_pids())

    known_pids: frozenset[int] = frozenset()

    def worker_pids(self) -> list[int]:
        return [process.pid for process in self.processes if process.pid is not None]
{%- endif %}


def serve(config: uvicorn.Config{% if cookiecutter.metrics == "yes" %}, metrics_port: int = 0{% endif %}) -> bool:
    """uvicorn.run(), saying whether it started (uvicorn.run() cannot, with workers).{% if cookiecutter.metrics == "yes" %} This process
    serves the metrics (serving/metrics.py).{% endif %}"""
    if config.should_reload:
        ChangeReload(config, target=Server(config).run, sockets=[config.bind_socket()]).run()
        return True
    if config.workers > 1:
        supervisor = Supervisor(config, sockets=[config.bind_socket()])
{%- if cookiecutter.metrics == "yes" %}
        with metrics.endpoint(config.host, metrics_port, supervisor.worker_pids):
            supervisor.run()
{%- else %}
        supervisor.run()
{%- endif %}
        return all(process.exitcode != STARTUP_FAILURE for process in supervisor.processes)
    server = Server(config)
{%- if cookiecutter.metrics == "yes" %}
    with metrics.endpoint(config.host, metrics_port):
        server.run()
{%- else %}
    server.run()
{%- endif %}
    return server.started


def exit_successfully(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # a requested stop is a success, not death by the signal Uvicorn re-raises


def keep_serving_on_reload(signum: int, frame: FrameType | None) -> None:
    logging.getLogger("uvicorn.error").warning("SIGHUP ignored: a single Uvicorn process cannot reload")


def main() -> None:
    parser = argparse.ArgumentParser(prog=PROG, description="Serve the app.")
    parser.add_argument("--reload", action="store_true", help="restart on changes in src/ (development; one process)")
    reload = parser.parse_args().reload
    settings = load_settings_or_exit()
    # With workers, Uvicorn's supervisor installs its own handlers (SIGHUP: rolling restart).
    signal.signal(signal.SIGTERM, exit_successfully)
    signal.signal(signal.SIGINT, exit_successfully)
    signal.signal(signal.SIGHUP, keep_serving_on_reload)
    options = uvicorn_options(settings) | ({"reload": True, "reload_dirs": ["src"]} if reload else {})
    if not serve(uvicorn.Config(APP_LOADER, **options){% if cookiecutter.metrics == "yes" %}, settings.metrics_port{% endif %}):
        sys.exit(STARTUP_FAILURE)
