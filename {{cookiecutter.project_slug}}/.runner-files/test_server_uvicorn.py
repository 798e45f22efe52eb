from __future__ import annotations

import gc
import os
import signal
import socket
import sys
import threading
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from types import SimpleNamespace
from typing import Any, NoReturn, cast

import pytest
from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess

from {{ cookiecutter.package_name }} import main
{%- if cookiecutter.metrics == "yes" %}
from {{ cookiecutter.package_name }}.serving import metrics
{%- endif %}
from {{ cookiecutter.package_name }}.serving.protocol import Server
from {{ cookiecutter.package_name }}.serving.server import (
    Supervisor,
    exit_successfully,
    keep_serving_on_reload,
    load_app,
    uvicorn_options,
)
from {{ cookiecutter.package_name }}.settings import Settings


def test_host_port_and_workers_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST", "::1")
    monkeypatch.setenv("PORT", "9100")
    monkeypatch.setenv("WEB_CONCURRENCY", "4")

    options = uvicorn_options(Settings(_env_file=None))

    assert (options["host"], options["port"], options["workers"]) == ("::1", 9100, 4)


def test_keep_alive_outlasts_a_load_balancers_60_second_idle_timeout(settings: Settings) -> None:
    assert uvicorn_options(settings)["timeout_keep_alive"] > 60


def test_new_workers_get_more_than_the_default_5_seconds_to_start(settings: Settings) -> None:
    assert uvicorn_options(settings)["timeout_worker_healthcheck"] > 5


def test_graceful_shutdown_is_bounded(settings: Settings) -> None:
    assert uvicorn_options(settings)["timeout_graceful_shutdown"] == settings.graceful_timeout


def test_forwarded_headers_are_trusted_only_from_the_configured_proxies(settings: Settings) -> None:
    options = uvicorn_options(settings)

    assert (options["proxy_headers"], options["forwarded_allow_ips"]) == (True, "127.0.0.1,::1")


def test_server_access_log_is_off_because_the_app_writes_it(settings: Settings) -> None:
    assert uvicorn_options(settings)["access_log"] is False


def test_a_requested_stop_exits_0() -> None:
    with pytest.raises(SystemExit) as stopped:
        exit_successfully(signal.SIGTERM, None)

    assert stopped.value.code == 0


def test_a_reload_signal_to_a_single_process_is_logged_and_survived(caplog: pytest.LogCaptureFixture) -> None:
    keep_serving_on_reload(signal.SIGHUP, None)

    assert "SIGHUP ignored" in caplog.text
{%- if cookiecutter.metrics == "yes" %}


def test_the_loader_gives_the_app_counted_by_the_metrics_middleware() -> None:
    assert cast(Any, load_app()).app is main.app


def test_the_loader_gives_the_bare_app_with_metrics_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("{{ cookiecutter.package_name | upper }}_METRICS_PORT", "0")

    assert load_app() is main.app


def test_the_supervisor_forgets_the_metrics_of_a_worker_it_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    forgotten: list[int] = []
    monkeypatch.setattr(metrics, "forget_worker", forgotten.append)
    supervisor = Supervisor.__new__(Supervisor)  # without its signal handlers: only the check runs
    supervisor.should_exit = threading.Event()
    supervisor.config = cast(Any, SimpleNamespace(timeout_worker_healthcheck=1))
    worker = {pid: SimpleNamespace(pid=pid, is_alive=lambda timeout: True) for pid in (101, 102, 103)}
    supervisor.processes = [cast(Any, worker[101]), cast(Any, worker[102])]
    supervisor.keep_subprocess_alive()

    supervisor.processes = [cast(Any, worker[101]), cast(Any, worker[103])]  # 102 was replaced
    supervisor.keep_subprocess_alive()

    assert forgotten == [102]
{%- else %}


def test_the_loader_gives_the_app() -> None:
    assert load_app() is main.app
{%- endif %}


def test_the_loader_keeps_start_up_objects_out_of_garbage_collection() -> None:
    load_app()
    frozen = gc.get_freeze_count()
    gc.unfreeze()

    assert frozen > 0


def exit_at_once(code: int) -> NoReturn:
    """Stands in for os._exit, which would end the test run."""
    raise SystemExit(code)


def test_an_app_that_fails_to_import_exits_with_uvicorns_startup_failure_code(monkeypatch: pytest.MonkeyPatch) -> None:
    # Code 3 stops Uvicorn's supervisor; with any other code it would restart the worker forever.
    monkeypatch.setitem(sys.modules, main.__name__, None)  # the next import of it raises ImportError
    monkeypatch.setattr(os, "_exit", exit_at_once)

    with pytest.raises(SystemExit) as exited:
        load_app()

    assert exited.value.code == STARTUP_FAILURE


def test_uvicorn_is_told_the_app_comes_from_a_factory(settings: Settings) -> None:
    assert uvicorn_options(settings)["factory"] is True


def test_supervisor_sees_at_once_a_worker_that_dies_during_a_health_check() -> None:
    supervisors_end, workers_end = Pipe()
    copy_in_the_worker = Connection(os.dup(workers_end.fileno()))  # what a started worker holds
    worker = SimpleNamespace(child_conn=workers_end, is_alive=lambda timeout: True, pid=None)
    supervisor = Supervisor.__new__(Supervisor)  # without its signal handlers: only the check runs
    supervisor.processes = [cast(Any, worker)]
    supervisor.should_exit = threading.Event()
    supervisor.config = cast(Any, SimpleNamespace(timeout_worker_healthcheck=1))
    supervisor.keep_subprocess_alive()

    copy_in_the_worker.close()  # the worker dies before it answers

    assert supervisors_end.poll(0)  # end of file now, not silence until the time-out


def test_supervisor_closes_its_listening_socket_as_it_stops() -> None:
    # Kept open while the workers drain, the kernel would queue new connections for no one.
    listener = socket.create_server(("127.0.0.1", 0))
    supervisor = Supervisor.__new__(Supervisor)  # without its signal handlers
    supervisor.sockets, supervisor.processes = [listener], []
    supervisor.terminate_all()

    assert listener.fileno() == -1


def test_uvicorns_connection_count_limit_is_off(settings: Settings) -> None:
    # It counts idle connections too: the app's middleware caps requests in flight instead.
    assert uvicorn_options(settings).get("limit_concurrency") is None


def test_the_supervisors_workers_serve_with_the_server_that_answers_queued_connections() -> None:
    worker = multiprocess.Process(Config(load_app), sockets=[])  # as Uvicorn's supervisor makes each one

    assert type(worker.server) is Server
