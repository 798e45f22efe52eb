"""Alembic migrations: `python -m {{ cookiecutter.package_name }} migrate` (`make migrate`), the release step before the
service starts, never the lifespan (once per worker). env.py locks the database: two at once are safe."""

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config


def upgrade(database_url: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.attributes["database_url"] = database_url  # not an ini option: no interpolation, never printed
    command.upgrade(config, "head")


def main() -> None:
    from {{ cookiecutter.package_name }}.settings import load_settings_or_exit

    logging.basicConfig(level=logging.INFO, format="%(message)s")  # Alembic's "Running upgrade" lines
    upgrade(load_settings_or_exit().database_url.get_secret_value())
