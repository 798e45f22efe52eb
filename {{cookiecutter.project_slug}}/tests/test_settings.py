from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from {{ cookiecutter.package_name }}.settings import (
    ENV_PREFIX,
    Settings,
    env_var_name,
    get_settings,
    load_settings_or_exit,
)

ENV_EXAMPLE = Path(__file__).parents[1] / ".env.example"


def test_defaults_listen_on_loopback() -> None:
    settings = Settings(_env_file=None)

    assert (settings.host, settings.port, settings.web_concurrency) == ("127.0.0.1", {{ cookiecutter.port }}, 1)


def test_platform_variables_are_read_unprefixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST", "0.0.0.0")  # noqa: S104
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")

    settings = Settings(_env_file=None)

    assert (settings.host, settings.port, settings.web_concurrency) == ("0.0.0.0", 9001, 3)  # noqa: S104


def test_app_settings_are_read_with_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}LOG_FORMAT", "json")

    assert Settings(_env_file=None).log_format == "json"


def test_get_settings_is_cached() -> None:
    assert get_settings() is get_settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [("PORT", "0"), ("PORT", "http"), ("WEB_CONCURRENCY", "0"), (f"{ENV_PREFIX}LOG_LEVEL", "loud")],
)
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError):
        Settings(_env_file=None)


def test_startup_error_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}LOG_LEVEL", "loud")

    with pytest.raises(SystemExit) as exit_info:
        load_settings_or_exit()

    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith(f"error: invalid setting {ENV_PREFIX}LOG_LEVEL='loud'")


def env_example_names() -> set[str]:
    lines = ENV_EXAMPLE.read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}


def test_env_example_lists_every_setting() -> None:
    missing = {env_var_name(name) for name in Settings.model_fields} - env_example_names()

    assert not missing, f".env.example lacks {', '.join(sorted(missing))}: add each with its default"


# Read by compose.yaml, not by the service.
COMPOSE_ONLY: set[str] = {% if cookiecutter.packaging == "docker" %}{"EDGE_SUBNET", "EDGE_ADDRESS", "APP_ADDRESS", "CERTS_DIR", "ACME_WEBROOT"}{% else %}set(){% endif %}
{%- if cookiecutter.packaging == "docker" and cookiecutter.database == "postgres" %}
COMPOSE_ONLY.add("POSTGRES_PASSWORD")  # compose's PostgreSQL
{%- endif %}


def test_env_example_lists_only_settings() -> None:
    unread = env_example_names() - {env_var_name(name) for name in Settings.model_fields} - COMPOSE_ONLY

    assert not unread, f".env.example lists {', '.join(sorted(unread))}, which no setting reads"


def test_lists_are_read_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}ALLOWED_HOSTS", "api.example.com, *.example.org")

    assert Settings(_env_file=None).allowed_hosts == ("api.example.com", "*.example.org")


def test_cors_is_off_unless_origins_are_set() -> None:
    assert Settings(_env_file=None).cors_origins == ()


@pytest.mark.parametrize(
    ("variables", "refused"),
    [
        ({"ENVIRONMENT": "production", "DEBUG": "true", "ALLOWED_HOSTS": "api.example.com"}, "DEBUG"),
        ({"ENVIRONMENT": "production"}, "ALLOWED_HOSTS"),
        ({"ENVIRONMENT": "production", "ALLOWED_HOSTS": "api.example.com,*"}, "ALLOWED_HOSTS"),
        ({"CORS_ORIGINS": "*", "CORS_ALLOW_CREDENTIALS": "true"}, "CORS_ALLOW_CREDENTIALS"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"),
        ({"MAX_BODY_BYTES": "-1"}, "MAX_BODY_BYTES"),
        ({"FORWARDED_ALLOW_IPS": "10.0.0.0/33"}, "FORWARDED_ALLOW_IPS"),
        ({"FORWARDED_ALLOW_IPS": "127.0.0.1,proxy"}, "FORWARDED_ALLOW_IPS"),
        (
            {"ENVIRONMENT": "production", "ALLOWED_HOSTS": "api.example.com", "FORWARDED_ALLOW_IPS": "*"},
            "FORWARDED_ALLOW_IPS",
        ),
        ({"ROOT_PATH": "api/v1"}, "ROOT_PATH"),
        ({"ROOT_PATH": "/api/"}, "ROOT_PATH"),
    ],
)
def test_unsafe_values_stop_the_service_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variables: dict[str, str], refused: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(env_var_name(name.lower()), value)

    with pytest.raises(SystemExit):
        load_settings_or_exit()

    first_line = capsys.readouterr().err.splitlines()[0]

    assert first_line.startswith(f"error: invalid setting {env_var_name(refused.lower())}=")


def test_startup_error_shows_a_default_as_the_variable_would_be_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}ENVIRONMENT", "production")  # ALLOWED_HOSTS left at its default, *

    with pytest.raises(SystemExit):
        load_settings_or_exit()

    assert capsys.readouterr().err.startswith(f"error: invalid setting {ENV_PREFIX}ALLOWED_HOSTS='*':")


def test_trusted_proxies_may_be_any_address_or_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8, 192.168.1.7,::1,fd00::/8")

    assert Settings(_env_file=None).forwarded_allow_ips == "10.0.0.0/8, 192.168.1.7,::1,fd00::/8"


@pytest.mark.parametrize("name", ["FORWARDED_ALLOW_IPS", "ROOT_PATH"])
def test_the_servers_standard_variables_are_read_unprefixed(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "/api/v1" if name == "ROOT_PATH" else "10.0.0.0/8")
    monkeypatch.setenv(f"{ENV_PREFIX}{name}", "/ignored" if name == "ROOT_PATH" else "192.168.0.1")

    assert env_var_name(name.lower()) == name
    assert getattr(Settings(_env_file=None), name.lower()) == ("/api/v1" if name == "ROOT_PATH" else "10.0.0.0/8")


def test_production_with_named_hosts_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}ENVIRONMENT", "production")
    monkeypatch.setenv(f"{ENV_PREFIX}ALLOWED_HOSTS", "api.example.com")

    assert load_settings_or_exit().allowed_hosts == ("api.example.com",)
