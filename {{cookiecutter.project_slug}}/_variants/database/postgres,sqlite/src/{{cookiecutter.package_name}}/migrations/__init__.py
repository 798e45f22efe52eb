"""Alembic, run by `make migrate` before the service starts, never by the lifespan (docs/operations.md);
`make revision` writes a new migration from what models.py changed."""

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import anyio
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from {{ cookiecutter.package_name }}.database import open_engine
from {{ cookiecutter.package_name }}.settings import load_settings_or_exit


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.attributes["database_url"] = database_url  # not an ini option: no interpolation, never printed
    # A new revision is fixed and formatted by the project's ruff, so that it passes `make lint` as written.
    config.set_section_option("post_write_hooks", "hooks", "fix, format")
    for hook, options in (("fix", "check --fix --exit-zero --quiet"), ("format", "format --quiet")):
        config.set_section_option("post_write_hooks", f"{hook}.type", "module")
        config.set_section_option("post_write_hooks", f"{hook}.module", "ruff")
        config.set_section_option("post_write_hooks", f"{hook}.options", f"{options} REVISION_SCRIPT_FILENAME")
    return config


def upgrade(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")


def revision(database_url: str, message: str) -> None:
    """Autogenerate: models.py compared with the database at DATABASE_URL, which must be migrated."""
    config = alembic_config(database_url)
    head = ScriptDirectory.from_config(config).get_current_head()
    next_id = f"{int(head) + 1:04d}" if head and head.isdigit() else None  # 0001, 0002, ...
    command.revision(config, message, autogenerate=True, rev_id=next_id)


def main(argv: Sequence[str] = ("migrate",)) -> None:
    parser = argparse.ArgumentParser(prog="python -m {{ cookiecutter.package_name }}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply the migrations to DATABASE_URL (the release step)")
    commands.add_parser("revision", help="a new migration from models.py").add_argument("message")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # Alembic's "Running upgrade" lines
    settings = load_settings_or_exit()
    try:  # wait for the database as the service does (a host booting, a database restarting)
        anyio.run(open_engine, settings).dispose()
    except RuntimeError as error:
        raise SystemExit(f"error: {error}") from None
    url = settings.database_url.get_secret_value()
    revision(url, args.message) if args.command == "revision" else upgrade(url)
