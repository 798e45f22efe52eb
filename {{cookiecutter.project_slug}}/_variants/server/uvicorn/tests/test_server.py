import signal

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


def test_server_access_log_and_header_are_off(settings: Settings) -> None:
    options = server.uvicorn_options(settings)

    assert (options["access_log"], options["server_header"]) == (False, False)


def test_every_option_is_one_uvicorn_run_takes(settings: Settings) -> None:
    import inspect  # noqa: PLC0415

    import uvicorn  # noqa: PLC0415

    assert set(server.uvicorn_options(settings)) <= set(inspect.signature(uvicorn.run).parameters)


def test_a_requested_stop_exits_0() -> None:
    with pytest.raises(SystemExit) as stopped:
        server.exit_successfully(signal.SIGTERM, None)

    assert stopped.value.code == 0
