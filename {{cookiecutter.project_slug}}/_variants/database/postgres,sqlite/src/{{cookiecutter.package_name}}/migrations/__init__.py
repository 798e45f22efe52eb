"""Alembic, run by `make migrate` before the service starts, never by the lifespan (docs/operations.md)."""

import logging
from pathlib import Path

import anyio
from alembic import command
from alembic.config import Config

from {{ cookiecutter.package_name }}.database import open_engine
from {{ cookiecutter.package_name }}.settings import load_settings_or_exit


def upgrade(database_url: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.attributes["database_url"] = database_url  # not an ini option: no interpolation, never printed
    command.upgrade(config, "head")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # Alembic's "Running upgrade" lines
    settings = load_settings_or_exit()
    try:  # wait for the database as the service does (a host booting, a database restarting)
        anyio.run(open_engine, settings).dispose()
    except RuntimeError as error:
        raise SystemExit(f"error: {error}") from None
    upgrade(settings.database_url.get_secret_value())
