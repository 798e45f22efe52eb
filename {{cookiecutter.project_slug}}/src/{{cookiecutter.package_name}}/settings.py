"""Every setting of the service, read once from the environment (and an optional .env file).

Names start with ENV_PREFIX (the package name in capitals), except the three that hosting platforms
set by convention: HOST, PORT and WEB_CONCURRENCY. `.env.example` lists them all.
"""

from __future__ import annotations

import ipaddress
import sys
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "{{ cookiecutter.package_name | upper }}_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    # "production" refuses unsafe values at startup: debug on, any host allowed.
    environment: Literal["development", "production"] = "development"
    # Tracebacks in error responses: for local development only.
    debug: bool = False
    # /docs, /redoc and /openapi.json in production too (always served in development).
    docs_in_production: bool = False
    app_name: str = {{ cookiecutter.project_name | py_str }}
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_format: Literal["text", "json"] = "text"
    # One line per request, written by the app's middleware (with the request id).
    access_log: bool = True
    # FastAPI's OpenTelemetry instrumentation; off, requests skip its check for a provider.
    telemetry: bool = False

    # Where the server listens and how many worker processes it runs.
    host: str = Field(default="127.0.0.1", validation_alias="HOST")
    port: int = Field(default={{ cookiecutter.port }}, ge=1, le=65535, validation_alias="PORT")
    web_concurrency: int = Field(default=1, ge=1, le=256, validation_alias="WEB_CONCURRENCY")
{%- if cookiecutter.metrics == "yes" %}
    # Port of the Prometheus metrics, on HOST like the service (serving/metrics.py); 0 turns them off.
    metrics_port: int = Field(default=9000, ge=0, le=65535)
{%- endif %}

    # Addresses or CIDR ranges whose X-Forwarded-For/-Proto headers are trusted (your proxy's).
    forwarded_allow_ips: str = "127.0.0.1,::1"
    # Seconds an idle connection stays open: above a load balancer's idle timeout (60 s on most).
    keep_alive_timeout: int = Field(default=75, ge=1, le=3600)
    # Seconds in-flight requests get to finish after SIGTERM before the server cancels them.
    graceful_timeout: int = Field(default=20, ge=1, le=3600)

    # Host header values served ("*.example.com" for subdomains), else 400; not "*" in production.
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ("*",)
    # Comma-separated origins allowed by CORS; empty (the default) turns CORS off.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # Send cookies and credentials cross-origin; never together with the origin "*".
    cors_allow_credentials: bool = False

    # Largest request body in bytes (413); a route's own max_body_size overrides it.
    max_body_bytes: int = Field(default=1_048_576, ge=0)
    # Largest request line plus headers in bytes (431).
    max_header_bytes: int = Field(default=32_768, ge=1_024, le=1_048_576)
    # Requests in flight per worker; past it 503 at once, but for the probes. 0: no limit.
    limit_concurrency: int = Field(default=1_000, ge=0)

    @field_validator("allowed_hosts", "cors_origins", mode="before")
    @classmethod
    def split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value
{%- if cookiecutter.metrics == "yes" %}

    @field_validator("metrics_port")
    @classmethod
    def metrics_port_is_not_the_service_port(cls, value: int, info: ValidationInfo) -> int:
        if value and value == info.data.get("port"):
            raise ValueError("must differ from PORT (the metrics never share the public port)")
        return value
{%- endif %}

    @field_validator("forwarded_allow_ips")
    @classmethod
    def addresses_or_networks(cls, value: str) -> str:
        for item in value.split(","):
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
def get_settings() -> Settings:
    """The settings, read once per process; tests call `get_settings.cache_clear()`."""
    return Settings()


def env_var_name(field_name: str) -> str:
    """The environment variable a setting is read from."""
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
            print(f"error: invalid setting {name}={value!r}: {reason}", file=sys.stderr)
        raise SystemExit(2) from None
