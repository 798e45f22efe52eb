import asyncio
import inspect
import multiprocessing
import os
import signal
import socket
from typing import Any

import pytest
from granian import Granian
from granian.constants import Interfaces
from starlette.types import Message, Receive, Send

from {{ cookiecutter.package_name }}.serving import server
from {{ cookiecutter.package_name }}.settings import Settings


def test_host_port_and_workers_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST", "::1")
    monkeypatch.setenv("PORT", "9100")
    monkeypatch.setenv("WEB_CONCURRENCY", "4")

    options = server.granian_options(Settings(_env_file=None))

    assert (options["address"], options["port"], options["workers"]) == ("::1", 9100, 4)


def test_the_app_is_served_as_asgi(settings: Settings) -> None:
    assert server.granian_options(settings)["interface"] == Interfaces.ASGI


def test_graceful_shutdown_is_bounded(settings: Settings) -> None:
    assert server.granian_options(settings)["workers_kill_timeout"] == settings.graceful_timeout


def test_failed_workers_are_started_again(settings: Settings) -> None:
    assert server.granian_options(settings)["respawn_failed_workers"] is True


def test_keep_alive_outlasts_a_load_balancers_60_second_idle_timeout(settings: Settings) -> None:
    # Granian's header read timeout also closes a connection idle between two requests.
    assert server.granian_options(settings)["http1_settings"].header_read_timeout > 60_000


def test_headers_are_bounded_in_size(settings: Settings) -> None:
    assert server.granian_options(settings)["http1_settings"].max_buffer_size == 65_536


def test_idle_connections_cannot_stop_the_service(settings: Settings) -> None:
    # Granian's backpressure counts open connections, idle ones too; the app's own limit counts requests.
    assert server.granian_options(settings)["backpressure"] >= 10 * settings.limit_concurrency


def test_root_path_is_the_servers_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOT_PATH", "/api/v1")

    assert server.granian_options(Settings(_env_file=None))["url_path_prefix"] == "/api/v1"


def test_server_access_log_is_off(settings: Settings) -> None:
    assert server.granian_options(settings)["log_access"] is False


def test_every_option_is_one_granian_takes(settings: Settings) -> None:
    assert set(server.granian_options(settings)) <= set(inspect.signature(Granian).parameters)


async def echo_client(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """An ASGI app that answers the lifespan's start-up with a failure, and notes each request's client."""
    if scope["type"] == "lifespan":
        await send({"type": "lifespan.startup.failed", "message": "on purpose"})
        return
    SEEN.append(scope["client"])


SEEN: list[object] = []
ECHO = f"{__name__}:echo_client"


def client_seen(settings: Settings, client: str) -> object:
    """The client address the app sees for a request from `client` that says it is for 6.6.6.6."""
    scope = {"type": "http", "client": (client, 5000), "headers": [(b"x-forwarded-for", b"6.6.6.6")]}
    SEEN.clear()
    asyncio.run(server.load_app(settings, None, ECHO)(scope, None, None))
    return SEEN[0]


def test_forwarded_headers_are_believed_from_the_configured_proxies(settings: Settings) -> None:
    assert client_seen(settings, "127.0.0.1") == ("6.6.6.6", 0)


def test_forwarded_headers_are_ignored_from_anyone_else(settings: Settings) -> None:
    assert client_seen(settings, "10.1.2.3") == ("10.1.2.3", 5000)


def test_trusted_proxies_are_the_servers_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8")

    assert client_seen(Settings(_env_file=None), "10.1.2.3") == ("6.6.6.6", 0)


@pytest.fixture
def signals_sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, signum: sent.append((pid, signum)))
    return sent


def test_an_app_that_fails_to_import_stops_the_server_with_exit_code_3(
    settings: Settings, signals_sent: list[tuple[int, int]]
) -> None:
    failed = multiprocessing.Event()

    with pytest.raises(SystemExit) as stopped:
        server.load_app(settings, failed, "no_such_module_here:app")

    assert (stopped.value.code, failed.is_set()) == (3, True)
    assert signals_sent == [(os.getppid(), signal.SIGTERM)]  # from a worker: to Granian's main process


def test_a_failed_lifespan_start_stops_the_server(settings: Settings, signals_sent: list[tuple[int, int]]) -> None:
    failed = multiprocessing.Event()
    app = server.load_app(settings, failed, ECHO)

    async def nothing(message: Message) -> None:
        pass

    asyncio.run(app({"type": "lifespan"}, None, nothing))

    assert (failed.is_set(), signals_sent) == (True, [(os.getppid(), signal.SIGTERM)])


def test_a_worker_stops_on_sigterm_while_it_loads_the_app(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # A forked worker inherits Granian's main-process handler, which would only note the stop: lost.
    monkeypatch.setattr(signal, "signal", lambda signum, handler: handlers.append((signum, handler)))
    handlers: list[tuple[int, object]] = []

    server.load_app(settings, None, ECHO)

    assert handlers == [(signal.SIGTERM, signal.SIG_DFL)]


def test_a_taken_port_is_one_line_and_exit_code_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        monkeypatch.setenv("PORT", str(port := taken.getsockname()[1]))
        with pytest.raises(SystemExit) as stopped:
            server.exit_if_the_port_is_taken(Settings(_env_file=None))

    assert stopped.value.code == 3
    assert capsys.readouterr().err.splitlines() == [
        f"error: Address already in use (while attempting to bind on address ('127.0.0.1', {port}))"
    ]


def test_a_free_port_is_left_free(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    monkeypatch.setenv("PORT", str(port))

    server.exit_if_the_port_is_taken(Settings(_env_file=None))

    socket.create_server(("127.0.0.1", port)).close()  # still free: the check closed its socket
