from __future__ import annotations

import asyncio
import io
import json
import logging
import logging.config
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.logging_config import (
    ACCESS_MESSAGE,
    TEXT_FORMAT,
    AccessEntry,
    AccessLog,
    Formatter,
    JsonFormatter,
    RequestIdFilter,
    StderrHandler,
    logging_config,
    request_id_var,
)
from {{ cookiecutter.package_name }}.middleware import access_logger
from {{ cookiecutter.package_name }}.settings import Settings


def make_record(message: str) -> logging.LogRecord:
    return logging.LogRecord("app", logging.INFO, __file__, 1, message, None, None)


def test_json_lines_carry_the_request_id() -> None:
    record = make_record("hello")
    token = request_id_var.set("req-1")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)

    line = json.loads(JsonFormatter().format(record))

    assert (line["message"], line["request_id"], line["level"]) == ("hello", "req-1", "INFO")


def test_log_format_setting_picks_the_formatter() -> None:
    config = logging_config(Settings(_env_file=None, log_format="json"))

    assert config["handlers"]["stderr"]["formatter"] == "json"


def test_server_access_loggers_are_silenced() -> None:
    loggers = logging_config(Settings(_env_file=None))["loggers"]

    assert loggers["uvicorn.access"]["handlers"] == []


def test_time_text_matches_the_standard_formatter() -> None:
    record = make_record("hello")

    assert Formatter().formatTime(record) == logging.Formatter().formatTime(record)


def stderr_bytes(monkeypatch: pytest.MonkeyPatch) -> io.BytesIO:
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8"))
    return raw


def test_handler_writes_a_record_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = stderr_bytes(monkeypatch)

    StderrHandler().handle(make_record("hello"))

    assert raw.getvalue() == b"hello\n"


def access_entry(path: str) -> AccessEntry:
    return (time.time(), "req-1", "127.0.0.1", "GET", path, "1.1", 200, 1.25)


def path_line(entry: AccessEntry) -> str:
    return entry[4] + "\n"


def test_access_lines_of_a_loop_turn_go_out_together(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = stderr_bytes(monkeypatch)
    handler = StderrHandler()

    async def write_two() -> tuple[bytes, bytes]:
        handler.write_later(path_line, access_entry("/one"))
        handler.write_later(path_line, access_entry("/two"))
        during_the_turn = raw.getvalue()
        await asyncio.sleep(0)  # the loop turns: the scheduled flush runs
        return during_the_turn, raw.getvalue()

    assert asyncio.run(write_two()) == (b"", b"/one\n/two\n")


def test_access_line_off_a_loop_goes_out_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = stderr_bytes(monkeypatch)

    StderrHandler().write_later(path_line, access_entry("/now"))

    assert raw.getvalue() == b"/now\n"


def test_a_record_goes_out_after_waiting_access_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = stderr_bytes(monkeypatch)
    handler = StderrHandler()

    async def access_line_then_record() -> bytes:
        handler.write_later(path_line, access_entry("/access"))
        handler.handle(make_record("shutting down"))
        return raw.getvalue()

    assert asyncio.run(access_line_then_record()) == b"/access\nshutting down\n"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """dictConfig changes process-wide state: put every logger back as it was."""
    loggers = [logging.root] + [
        one for one in logging.Logger.manager.loggerDict.values() if isinstance(one, logging.Logger)
    ]
    saved = [(one, one.handlers[:], one.level, one.propagate, one.disabled, one.filters[:]) for one in loggers]
    yield
    for one, handlers, level, propagate, disabled, filters in saved:
        one.handlers, one.propagate, one.disabled, one.filters = handlers, propagate, disabled, filters
        one.setLevel(level)  # also empties the loggers' level caches


def direct_route_of(config: dict[str, Any]) -> tuple[StderrHandler, Formatter] | None:
    logging.config.dictConfig(config)
    return AccessLog(access_logger).direct


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_access_lines_skip_the_record_with_the_shipped_config(log_format: str) -> None:
    assert direct_route_of(logging_config(Settings(_env_file=None, log_format=log_format))) is not None


@pytest.mark.usefixtures("restore_logging")
def test_access_lines_take_the_standard_path_under_another_handler() -> None:
    config = logging_config(Settings(_env_file=None))
    config["handlers"]["stderr"] = {"class": "logging.StreamHandler"}

    assert direct_route_of(config) is None


@pytest.mark.parametrize(
    "formatter",
    [
        Formatter(TEXT_FORMAT),
        JsonFormatter(),
        Formatter("%(message)s {braces} [%(name)s] name %(levelname)s %(message)s"),
    ],
    ids=["text", "json", "repeated-field-and-braces"],
)
def test_access_line_text_is_the_formatters(formatter: Formatter) -> None:
    entry = access_entry("/items/{braces}")
    record = make_record(ACCESS_MESSAGE.format(*entry[2:]))
    record.created, record.msecs = entry[0], int((entry[0] - int(entry[0])) * 1000)
    token = request_id_var.set(entry[1])
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)

    fast = formatter.line_maker("INFO", record.name)(entry)

    assert fast == formatter.format(record) + "\n"


@pytest.mark.parametrize(
    "fmt", ["%(levelname)-8s %(message)s", "%(message)s 100%%", "%(process)d %(message)s"], ids=str
)
def test_formats_the_fast_path_cannot_fill_take_the_standard_one(fmt: str) -> None:
    assert Formatter(fmt).formats_from_fields() is False
