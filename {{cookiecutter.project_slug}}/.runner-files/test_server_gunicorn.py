from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.gunicorn_worker import LimitedUvicornWorker

CONFIG_FILE = Path(__file__).parents[1] / "gunicorn.conf.py"


def load_config() -> dict[str, Any]:
    return runpy.run_path(str(CONFIG_FILE))


def test_bind_and_workers_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST", "0.0.0.0")  # noqa: S104
    monkeypatch.setenv("PORT", "9100")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")

    config = load_config()

    assert (config["bind"], config["workers"]) == (["0.0.0.0:9100"], 3)


def test_ipv6_host_is_bracketed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST", "::1")

    assert load_config()["bind"] == ["[::1]:{{ cookiecutter.port }}"]


def test_workers_are_uvicorn_workers() -> None:
    worker = LimitedUvicornWorker

    assert load_config()["worker_class"] == f"{worker.__module__}.{worker.__qualname__}"


def test_a_single_worker_is_never_recycled(monkeypatch: pytest.MonkeyPatch) -> None:
    # Its replacement would start only after it left: a pause in service at every recycle.
    monkeypatch.setenv("WEB_CONCURRENCY", "1")

    assert load_config()["max_requests"] == 0


def test_workers_are_recycled_when_there_are_several(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "2")

    assert load_config()["max_requests"] >= 100_000


def test_keep_alive_outlasts_a_load_balancers_60_second_idle_timeout() -> None:
    assert load_config()["keepalive"] > 60


def test_control_socket_is_disabled_so_instances_cannot_collide() -> None:
    assert load_config()["control_socket_disable"] is True


def test_gunicorn_accepts_the_config() -> None:
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "gunicorn", "--check-config", "--config", str(CONFIG_FILE)],
        capture_output=True,
        text=True,
        check=False,
        cwd=CONFIG_FILE.parent,
    )

    assert result.returncode == 0, result.stderr
