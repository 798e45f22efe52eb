from __future__ import annotations

import importlib
import os
from collections.abc import Iterator

import pytest
import uvicorn
from gunicorn.config import Config  # type: ignore[import-untyped]
from gunicorn.glogging import Logger  # type: ignore[import-untyped]
from gunicorn.sock import TCPSocket  # type: ignore[import-untyped]
from uvicorn_worker import UvicornWorker as StockWorker  # type: ignore[import-untyped]

from {{ cookiecutter.package_name }}.serving import gunicorn_worker
from {{ cookiecutter.package_name }}.serving.gunicorn_worker import UvicornWorker
from {{ cookiecutter.package_name }}.serving.protocol import HttpProtocol, Server
from {{ cookiecutter.package_name }}.settings import ENV_PREFIX, get_settings


def make_worker() -> UvicornWorker:
    config = Config()
    return UvicornWorker(0, os.getpid(), [], None, 30, config, Logger(config))


def test_worker_uses_the_header_limited_protocol() -> None:
    assert make_worker().config.http is HttpProtocol


def test_worker_takes_limits_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}GRACEFUL_TIMEOUT", "9")
    monkeypatch.setenv(f"{ENV_PREFIX}MAX_HEADER_BYTES", "4096")
    get_settings.cache_clear()
    worker_class = importlib.reload(gunicorn_worker).UvicornWorker

    config = worker_class(0, os.getpid(), [], None, 30, Config(), Logger(Config())).config

    assert (config.timeout_graceful_shutdown, config.h11_max_incomplete_event_size) == (9, 4096)


def test_worker_leaves_uvicorns_connection_count_limit_off() -> None:
    # It counts idle connections too: the app's middleware caps requests in flight instead.
    assert make_worker().config.limit_concurrency is None


def test_worker_sends_no_server_header() -> None:
    assert make_worker().config.server_header is False


@pytest.fixture
def gunicorn_listener() -> Iterator[TCPSocket]:
    config = Config()
    listener = TCPSocket(("127.0.0.1", 0), config, Logger(config))
    yield listener
    listener.sock.close()


def test_worker_serves_plain_sockets(monkeypatch: pytest.MonkeyPatch, gunicorn_listener: TCPSocket) -> None:
    # uvloop closes a socket it was handed; Gunicorn's wrapper would close it again and log an error.
    served: list[object] = []
    monkeypatch.setattr(StockWorker, "run", lambda worker: served.extend(worker.sockets))
    worker = make_worker()
    worker.sockets = [gunicorn_listener]  # as Gunicorn sets them after forking, with reuse_port

    worker.run()

    assert served == [gunicorn_listener.sock]


def test_worker_serves_with_the_server_that_answers_queued_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    servers: list[object] = []

    async def serve(server: Server, sockets: list[object]) -> None:
        servers.append(server)
        server.started = True

    monkeypatch.setattr(uvicorn.Server, "serve", serve)  # Uvicorn's Server.serve, and ours
    worker = make_worker()
    worker.sockets, worker.wsgi = [], object()

    worker.run()

    assert [type(server) for server in servers] == [Server]
