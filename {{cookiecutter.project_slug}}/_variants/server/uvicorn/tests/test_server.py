import socket

import pytest

from {{ cookiecutter.package_name }}.serving import server
from {{ cookiecutter.package_name }}.settings import Settings


def test_host_port_and_workers_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST", "::1")
    monkeypatch.setenv("PORT", "9100")
    monkeypatch.setenv("WEB_CONCURRENCY", "4")

    options = server.uvicorn_options(Settings(_env_file=None))

    assert (options["host"], options["port"], options["workers"]) == ("::1", 9100, 4)


def test_keep_alive_outlasts_a_load_balancers_60_second_idle_timeout(settings: Settings) -> None:
    assert server.uvicorn_options(settings)["timeout_keep_alive"] > 60


def test_graceful_shutdown_is_bounded(settings: Settings) -> None:
    assert server.uvicorn_options(settings)["timeout_graceful_shutdown"] == settings.graceful_timeout


def test_forwarded_headers_are_trusted_only_from_the_configured_proxies(settings: Settings) -> None:
    options = server.uvicorn_options(settings)

    assert (options["proxy_headers"], options["forwarded_allow_ips"]) == (True, "127.0.0.1,::1")


def test_root_path_and_trusted_proxies_are_the_servers_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOT_PATH", "/api/v1")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8")

    options = server.uvicorn_options(Settings(_env_file=None))

    assert (options["root_path"], options["forwarded_allow_ips"]) == ("/api/v1", "10.0.0.0/8")


def test_server_access_log_and_header_are_off(settings: Settings) -> None:
    options = server.uvicorn_options(settings)

    assert (options["access_log"], options["server_header"]) == (False, False)


def test_every_option_is_one_uvicorn_run_takes(settings: Settings) -> None:
    import inspect

    import uvicorn

    assert set(server.uvicorn_options(settings)) <= set(inspect.signature(uvicorn.run).parameters)


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
