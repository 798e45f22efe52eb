from __future__ import annotations

import os

import pytest
from gunicorn.config import Config  # type: ignore[import-untyped]
from gunicorn.glogging import Logger  # type: ignore[import-untyped]

from {{ cookiecutter.package_name }}.gunicorn_worker import LimitedUvicornWorker
from {{ cookiecutter.package_name }}.http_protocol import HTTP_PROTOCOL
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX


def make_worker() -> LimitedUvicornWorker:
    config = Config()
    return LimitedUvicornWorker(0, os.getpid(), [], None, 30, config, Logger(config))


def test_worker_uses_the_header_limited_protocol() -> None:
    assert make_worker().config.http == HTTP_PROTOCOL


def test_worker_takes_limits_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}LIMIT_CONCURRENCY", "7")
    monkeypatch.setenv(f"{ENV_PREFIX}GRACEFUL_TIMEOUT", "9")
    monkeypatch.setenv(f"{ENV_PREFIX}MAX_HEADER_BYTES", "4096")

    config = make_worker().config

    assert (config.limit_concurrency, config.timeout_graceful_shutdown, config.h11_max_incomplete_event_size) == (
        7,
        9,
        4096,
    )


def test_worker_sends_no_server_header() -> None:
    assert make_worker().config.server_header is False
