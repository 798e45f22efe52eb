"""The database's operational contract: /readyz follows it, start-up waits for it (bounded), a bad
DATABASE_URL stops the service with one line, and the migrations are a release step."""

from __future__ import annotations

import logging

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlmodel import create_engine

from {{ cookiecutter.package_name }} import database
from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.migrations import alembic_config, upgrade
from {{ cookiecutter.package_name }}.migrations import main as migrate
from {{ cookiecutter.package_name }}.settings import Settings, load_settings_or_exit

# Nothing answers there: a closed port on loopback, or a folder that does not exist.
UNREACHABLE = {% if cookiecutter.database == "postgres" %}"postgresql+psycopg://nobody:hunter2@127.0.0.1:9/none"{% else %}"sqlite:////nonexistent-folder/none.db"{% endif %}


def test_readyz_is_503_while_the_database_is_unreachable(settings: Settings) -> None:
    app = create_app(settings)
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        app.state.engine = create_engine(UNREACHABLE)  # as if the database went away
        app.state.database_checked_at = float("-inf")  # past the one-second cache

        response = client.get("/readyz")

    assert (response.status_code, response.json()) == (503, {"status": "database unreachable"})


def test_startup_retries_then_fails_with_one_line_per_attempt(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(database, "CONNECT_DELAYS", (0, 0))
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)

    with pytest.raises(RuntimeError, match="after 3 attempts"), caplog.at_level(logging.WARNING):
        TestClient(create_app(Settings())).__enter__()

    lines = [record.getMessage() for record in caplog.records if "database unreachable" in record.getMessage()]
    assert len(lines) == 3
    assert all("\n" not in line and "hunter2" not in line for line in lines)


@pytest.mark.parametrize("url", ["not a url", "mysql://user:hunter2@db/name"])
def test_a_malformed_database_url_exits_2_with_one_line_hiding_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)

    with pytest.raises(SystemExit) as exit_info:
        load_settings_or_exit()

    error = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert error.startswith("error: invalid setting DATABASE_URL='**********'")
    assert error.count("\n") == 1
    assert "hunter2" not in error


def test_the_url_is_kept_out_of_reprs(settings: Settings) -> None:
    assert settings.database_url.get_secret_value() not in repr(settings)


def test_migrate_waits_for_the_database_then_fails_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "CONNECT_DELAYS", (0,))
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)

    with pytest.raises(SystemExit) as exit_info:
        migrate()

    assert str(exit_info.value.code).startswith("error: database unreachable after 2 attempts")
    assert "hunter2" not in str(exit_info.value.code)


def test_migrating_again_finds_nothing_to_do(database_url: str) -> None:
    upgrade(database_url)  # the fixture migrated it already: nothing to apply, no error

    with TestClient(create_app(Settings(DATABASE_URL=database_url))) as client:
        assert client.post("/items/", json={"name": "still works"}).status_code == 201


def test_the_migrations_match_the_models(database_url: str) -> None:
    """A model changed without its migration fails here: `make revision m="what changed"` writes it."""
    command.check(alembic_config(database_url))  # raises, naming the differences
