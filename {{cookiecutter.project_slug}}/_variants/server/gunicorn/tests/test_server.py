from __future__ import annotations

import importlib.util
import os
import runpy
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from gunicorn.app.wsgiapp import WSGIApplication  # type: ignore[import-untyped]  # gunicorn ships no type hints

from {{ cookiecutter.package_name }}.serving.server import CONFIG, gunicorn_command

CONFIG_SPEC = importlib.util.find_spec(CONFIG.removeprefix("python:"))


def load_config() -> dict[str, Any]:
    """The config module's settings, read afresh (it reads the environment when run)."""
    assert CONFIG_SPEC is not None
    assert CONFIG_SPEC.origin is not None
    return runpy.run_path(CONFIG_SPEC.origin)


def test_server_runs_gunicorn_with_this_config() -> None:
    assert gunicorn_command()[1:] == ["-m", "gunicorn", "--config", CONFIG]


def test_reload_is_gunicorns_own_option() -> None:
    assert gunicorn_command(reload=True)[-1] == "--reload"


def test_bind_and_workers_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST", "0.0.0.0")  # noqa: S104
    monkeypatch.setenv("PORT", "9100")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")

    config = load_config()

    assert (config["bind"], config["workers"]) == (["0.0.0.0:9100"], 3)


def test_ipv6_host_is_bracketed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST", "::1")

    assert load_config()["bind"] == ["[::1]:{{ cookiecutter.port }}"]


def test_root_path_and_trusted_proxies_are_the_servers_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOT_PATH", "/api/v1")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8")

    config = load_config()

    assert (config["Worker"].CONFIG_KWARGS["root_path"], config["forwarded_allow_ips"]) == ("/api/v1", "10.0.0.0/8")


def test_workers_are_uvicorn_workers_with_the_settings_limits() -> None:
    config = load_config()

    assert config["worker_class"].endswith(".Worker")
    assert config["Worker"].CONFIG_KWARGS["timeout_graceful_shutdown"] == config["settings"].graceful_timeout
    assert config["Worker"].CONFIG_KWARGS["server_header"] is False
    assert config["Worker"].CONFIG_KWARGS["access_log"] is False  # the app writes it, with the request id


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_taken_address_stops_gunicorn_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], taken_port: int, workers: str
) -> None:
    monkeypatch.setenv("HOST", "127.0.0.1")
    monkeypatch.setenv("PORT", str(taken_port))
    monkeypatch.setenv("WEB_CONCURRENCY", workers)

    with pytest.raises(SystemExit):
        load_config()["on_starting"](None)

    assert capsys.readouterr().err == f"error: cannot listen on 127.0.0.1:{taken_port}: Address already in use\n"


def test_a_taken_address_exits_3_as_a_failed_startup(monkeypatch: pytest.MonkeyPatch, taken_port: int) -> None:
    # 3, like Uvicorn: the systemd unit's RestartPreventExitStatus does not restart it in a loop.
    monkeypatch.setenv("HOST", "127.0.0.1")
    monkeypatch.setenv("PORT", str(taken_port))

    with pytest.raises(SystemExit) as stopped:
        load_config()["on_starting"](None)

    assert stopped.value.code == 3


def test_a_free_address_passes_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port the system just gave out and nobody listens on
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    monkeypatch.setenv("HOST", "127.0.0.1")
    monkeypatch.setenv("PORT", str(free_port))
    monkeypatch.setenv("WEB_CONCURRENCY", "2")

    assert load_config()["on_starting"](None) is None


def test_keep_alive_outlasts_a_load_balancers_60_second_idle_timeout() -> None:
    assert load_config()["keepalive"] > 60


def test_control_socket_is_disabled_so_instances_cannot_collide() -> None:
    assert load_config()["control_socket_disable"] is True


def test_recycling_can_be_switched_on_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # As gunicorn_conf.py says: Gunicorn applies GUNICORN_CMD_ARGS over the config file.
    monkeypatch.setenv("GUNICORN_CMD_ARGS", "--max-requests 1000000 --max-requests-jitter 500000")
    monkeypatch.setattr(sys, "argv", ["gunicorn", "--config", CONFIG])

    cfg = WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").cfg

    assert (cfg.max_requests, cfg.max_requests_jitter) == (1_000_000, 500_000)


def test_gunicorn_accepts_the_config(tmp_path: Path) -> None:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "gunicorn", "--check-config", "--config", CONFIG],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,  # away from the developer's .env, like every test (conftest.py)
    )

    assert result.returncode == 0, result.stderr


def test_a_reload_tells_the_uvicorn_worker_to_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    # Gunicorn's reloader (make dev) calls worker_int when a file changed; Gunicorn then starts a new worker.
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, signum: sent.append((pid, signum)))

    load_config()["worker_int"](SimpleNamespace(pid=4242))

    assert sent == [(4242, signal.SIGTERM)]
