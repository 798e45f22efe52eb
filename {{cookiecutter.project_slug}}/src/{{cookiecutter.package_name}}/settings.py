"""Every setting, from the environment or .env: ENV_PREFIX + its name, but the standard names (.env.example)."""

{% if cookiecutter.database != "none" -%}
import contextlib
{% endif -%}
import ipaddress
import sys
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, {% if cookiecutter.database != "none" or cookiecutter.sentry == "yes" %}SecretStr, {% endif %}ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
{%- if cookiecutter.database != "none" %}
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
{%- endif %}

ENV_PREFIX = "{{ cookiecutter.package_name | upper }}_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    environment: Literal["development", "production"] = "development"
    debug: bool = False
    docs_in_production: bool = False  # /docs, /redoc and /openapi.json, served in development, in production too
    app_name: str = {{ cookiecutter.project_name | py_str }}
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_format: Literal["text", "json"] = "text"
    access_log: bool = True
    telemetry: bool = False
{%- if cookiecutter.sentry == "yes" %}
    # Sentry's error tracking, on when set (error_tracking.py); a secret, never logged nor printed.
    sentry_dsn: SecretStr | None = Field(default=None, validation_alias="SENTRY_DSN")
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0.0, le=1.0)  # 0: errors only, no traces
{%- endif %}
    host: str = Field(default="127.0.0.1", validation_alias="HOST")
    port: int = Field(default={{ cookiecutter.port }}, ge=1, le=65535, validation_alias="PORT")
    web_concurrency: int = Field(default=1, ge=1, le=256, validation_alias="WEB_CONCURRENCY")
{%- if cookiecutter.metrics == "yes" %}
    # Port of the Prometheus metrics, on HOST like the service (serving/metrics.py); 0 turns them off.
    metrics_port: int = Field(default={{ metrics_port }}, ge=0, le=65535)
{%- endif %}
    forwarded_allow_ips: str = Field(default="127.0.0.1,::1", validation_alias="FORWARDED_ALLOW_IPS")
    root_path: str = Field(default="", pattern=r"^(/[^/]+)*$", validation_alias="ROOT_PATH")  # a proxy's path prefix
    keep_alive_timeout: int = Field(default=75, ge=1, le=3600)
    graceful_timeout: int = Field(default=20, ge=1, le=3600)
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ("*",)
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    cors_allow_credentials: bool = False
    max_body_bytes: int = Field(default=1_048_576, ge=0)
    limit_concurrency: int = Field(default=1_000, ge=0)
{%- if cookiecutter.database != "none" %}
    # A secret: never in logs, reprs or error lines. Tests use a throwaway database (tests/conftest.py).
    database_url: SecretStr = Field(
        default=SecretStr({% if cookiecutter.database == "postgres" %}"postgresql+psycopg://{{ cookiecutter.package_name }}@127.0.0.1:5432/{{ cookiecutter.package_name }}"{% else %}"sqlite:///app.db"{% endif %}),
        validation_alias="DATABASE_URL",
    )
{%- endif %}

    @field_validator("allowed_hosts", "cors_origins", mode="before")
    @classmethod
    def split_commas(cls, value: object) -> object:
        return tuple(item.strip() for item in value.split(",") if item.strip()) if isinstance(value, str) else value
{%- if cookiecutter.metrics == "yes" %}

    @field_validator("metrics_port")
    @classmethod
    def metrics_port_is_not_the_service_port(cls, value: int, info: ValidationInfo) -> int:
        if value and value == info.data.get("port"):
            raise ValueError("must differ from PORT (the metrics never share the public port)")
        return value
{%- endif %}

{%- if cookiecutter.database != "none" %}

    @field_validator("database_url")
    @classmethod
    def a_{{ cookiecutter.database }}_url(cls, value: SecretStr) -> SecretStr:
        with contextlib.suppress(ArgumentError, ValueError):  # ValueError: a port that is no number
            if make_url(value.get_secret_value()).get_backend_name() == "{{ "postgresql" if cookiecutter.database == "postgres" else "sqlite" }}":
                return value
        raise ValueError("must be a URL such as {{ "postgresql+psycopg://user:password@host:5432/name" if cookiecutter.database == "postgres" else "sqlite:///path/to/app.db" }}")
{%- endif %}

    @field_validator("forwarded_allow_ips")
    @classmethod
    def addresses_or_networks(cls, value: str, info: ValidationInfo) -> str:
        for item in value.split(","):
            if item.strip() == "*" and info.data.get("environment") == "production":
                raise ValueError("must name the proxies in production, not '*' (clients could forge X-Forwarded-For)")
            if item.strip() not in {"", "*"}:
                ipaddress.ip_network(item.strip())  # its ValueError names the item
        return value

    @field_validator("debug")
    @classmethod
    def no_debug_in_production(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("environment") == "production":
            raise ValueError(f"must be false when {ENV_PREFIX}ENVIRONMENT=production (it shows tracebacks)")
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def no_wildcard_host_in_production(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if not value:
            raise ValueError("must list at least one host")
        if "*" in value and info.data.get("environment") == "production":
            raise ValueError(f"must list the served host names when {ENV_PREFIX}ENVIRONMENT=production, not '*'")
        return value

    @field_validator("cors_allow_credentials")
    @classmethod
    def no_credentials_for_any_origin(cls, value: bool, info: ValidationInfo) -> bool:
        if value and "*" in info.data.get("cors_origins", ()):
            raise ValueError(f"must be false while {ENV_PREFIX}CORS_ORIGINS allows any origin ('*')")
        return value


@lru_cache
def get_settings() -> Settings:  # read once per process; tests call get_settings.cache_clear()
    return Settings()


def env_var_name(field_name: str) -> str:
    alias = Settings.model_fields[field_name].validation_alias
    return alias if isinstance(alias, str) else ENV_PREFIX + field_name.upper()


def load_settings_or_exit() -> Settings:
    """The settings, or exit 2 with one line per invalid setting (a startup check, not a traceback)."""
    try:
        return get_settings()
    except ValidationError as error:
        for problem in error.errors():
            field = str(problem["loc"][0]) if problem["loc"] else "?"
            name = env_var_name(field) if field in Settings.model_fields else field
            reason = problem["msg"].removeprefix("Value error, ")
            value = ",".join(v) if isinstance(v := problem.get("input"), tuple) else v  # as the variable is written
{%- if cookiecutter.database != "none" %}
            value = "**********" if name == "DATABASE_URL" else value  # a secret, never printed
{%- endif %}
            print(f"error: invalid setting {name}={value!r}: {reason}", file=sys.stderr)
        raise SystemExit(2) from None
