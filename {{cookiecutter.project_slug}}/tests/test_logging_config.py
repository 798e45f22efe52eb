from __future__ import annotations

import asyncio
import io
import json
import logging
import sys

import pytest

from {{ cookiecutter.package_name }}.logging_config import (
    Formatter,
    JsonFormatter,
    RequestIdFilter,
    StderrHandler,
    logging_config,
    request_id_var,
)
from {{ cookiecutter.package_name }}.settings import Settings


def make_record(message: str) -> logging.LogRecord:
    return logging.LogRecord("{{ cookiecutter.package_name }}", logging.INFO, __file__, 1, message, None, None)


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


def test_handler_writes_at_once_outside_an_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = stderr_bytes(monkeypatch)

    StderrHandler().handle(make_record("hello"))

    assert raw.getvalue() == b"hello\n"


def test_handler_writes_a_loop_turns_lines_together(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = stderr_bytes(monkeypatch)
    handler = StderrHandler()

    async def log_twice() -> tuple[bytes, bytes]:
        handler.handle(make_record("one"))
        handler.handle(make_record("two"))
        during_the_turn = raw.getvalue()
        await asyncio.sleep(0)  # the loop turns: the scheduled flush runs
        return during_the_turn, raw.getvalue()

    assert asyncio.run(log_twice()) == (b"", b"one\ntwo\n")
