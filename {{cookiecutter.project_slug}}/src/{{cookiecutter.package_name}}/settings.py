"""Every setting of the service, read once from the environment (and an optional .env file).

Names start with ENV_PREFIX (the package name in capitals), except the three that hosting platforms
set by convention: HOST, PORT and WEB_CONCURRENCY. `.env.example` lists them all.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    app_name: str = {{ cookiecutter.project_name | tojson }}
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_format: Literal["text", "json"] = "text"
    # One line per request, written by the app's own middleware (cheaper than the server's).
    access_log: bool = True

    # Where the server listens and how many worker processes it runs.
    host: str = Field(default="127.0.0.1", validation_alias="HOST")
    port: int = Field(default={{ cookiecutter.port }}, ge=1, le=65535, validation_alias="PORT")
    web_concurrency: int = Field(default=1, ge=1, le=256, validation_alias="WEB_CONCURRENCY")

    # Comma-separated addresses or CIDR ranges whose X-Forwarded-For/-Proto headers are trusted:
    # set it to your proxy's or ingress's range, or redirects and client addresses will be wrong.
    forwarded_allow_ips: str = "127.0.0.1,::1"
    # Seconds an idle keep-alive connection stays open. Must exceed the idle timeout of any load
    # balancer in front (60 s on most), or the balancer reuses closed connections and answers 502.
    keep_alive_timeout: int = Field(default=75, ge=1, le=3600)
    # Seconds in-flight requests get to finish after SIGTERM before the server cancels them.
    graceful_timeout: int = Field(default=20, ge=1, le=3600)


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
            print(
                f"error: invalid setting {name}={problem.get('input')!r}: {problem['msg']}",
                file=sys.stderr,
            )
        raise SystemExit(2) from None
