from __future__ import annotations

import json
import logging
import sys
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace

from {{ cookiecutter.package_name }}.context import request_id_var
from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.serving.logging_config import (
    TEXT_FORMAT,
    JsonFormatter,
    RequestIdFilter,
    TextFormatter,
    logging_config,
)
from {{ cookiecutter.package_name }}.settings import Settings


def make_record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("app", logging.INFO, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return record


def with_request_id(record: logging.LogRecord, request_id: str) -> logging.LogRecord:
    token = request_id_var.set(request_id)
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    return record


def json_line(record: logging.LogRecord) -> dict[str, object]:
    return dict(json.loads(JsonFormatter().format(record)))


def test_json_lines_carry_the_request_id() -> None:
    assert json_line(with_request_id(make_record("hello"), "req-1"))["request_id"] == "req-1"


def test_json_lines_carry_level_logger_and_message() -> None:
    line = json_line(make_record("hello"))

    assert (line["level"], line["logger"], line["message"]) == ("INFO", "app", "hello")


def test_json_time_is_iso_8601_utc() -> None:
    time = str(json_line(make_record("hello"))["time"])

    assert datetime.fromisoformat(time).utcoffset() is not None
    assert time.endswith("+00:00")


def test_json_access_lines_carry_their_fields_separately(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="{{ cookiecutter.package_name }}.access"):
        client.get("/")
    line = json_line(caplog.records[-1])

    assert {name: line[name] for name in ("method", "target", "status", "client")} == {
        "method": "GET",
        "target": "/",
        "status": 200,
        "client": "testclient",
    }
    assert isinstance(line["duration_ms"], float)


def test_text_lines_escape_control_characters() -> None:
    line = TextFormatter(TEXT_FORMAT).format(with_request_id(make_record("GET /a\nFAKE \x1b[31m"), "-"))

    assert line.endswith("GET /a\n  FAKE \\x1b[31m")  # a next line is indented: it cannot pass for a record


def test_a_traceback_in_a_message_reads_as_a_traceback() -> None:
    # What Starlette hands Uvicorn when the lifespan fails: the traceback as text, logged as the message.
    message = 'Traceback (most recent call last):\n  File "lifespan.py", line 9, in lifespan\nValueError: bad URL'
    lines = TextFormatter(TEXT_FORMAT).format(with_request_id(make_record(message), "-")).splitlines()

    assert lines[0].endswith("Traceback (most recent call last):")
    assert lines[1:] == ['    File "lifespan.py", line 9, in lifespan', "  ValueError: bad URL"]


@pytest.mark.parametrize("control", ["\x85", "\x9b", "\u2028", "\u202e", "\x00", "\x7f"])
def test_unicode_line_and_format_controls_are_escaped_in_text_and_json(control: str) -> None:
    record = with_request_id(make_record(f"GET /a{control}b"), "-")

    assert control not in TextFormatter(TEXT_FORMAT).format(record)
    assert control not in JsonFormatter().format(record)
    assert json_line(record)["message"] == f"GET /a{control}b"  # escaped, not lost


def test_the_access_line_logs_the_target_as_sent(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="{{ cookiecutter.package_name }}.access"):
        client.get("/a%22b%20c?q=%0a")

    assert caplog.records[-1].getMessage().split('"')[1] == "GET /a%22b%20c?q=%0a HTTP/1.1"


def text_traceback(error: Exception) -> str:
    try:
        raise error
    except ValueError:
        record = logging.LogRecord("app", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    return TextFormatter(TEXT_FORMAT).format(with_request_id(record, "-"))


def test_a_traceback_cannot_forge_a_text_line() -> None:
    lines = text_traceback(ValueError("bad\n2026-01-01 00:00:00,000 INFO [app] [-] forged")).splitlines()

    assert [line for line in lines[1:] if not line.startswith("  ")] == []


def test_a_traceback_escapes_control_characters() -> None:
    assert "\x1b" not in text_traceback(ValueError("bad \x1b[31m"))


def test_a_forged_path_stays_on_one_text_line(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="{{ cookiecutter.package_name }}.access"):
        client.get("/x%0a2026-01-01 00:00:00,000 INFO [app] [-] forged")
    line = TextFormatter(TEXT_FORMAT).format(with_request_id(caplog.records[-1], "-"))

    assert "\n" not in line


def test_log_format_setting_picks_the_formatter() -> None:
    config = logging_config(Settings(_env_file=None, log_format="json"))

    assert config["formatters"]["default"]["()"] is JsonFormatter


def test_access_log_is_off_by_setting(caplog: pytest.LogCaptureFixture) -> None:
    with (
        TestClient(create_app(Settings(_env_file=None, access_log=False))) as quiet,
        caplog.at_level("INFO", logger="{{ cookiecutter.package_name }}.access"),
    ):
        quiet.get("/")

    assert caplog.records == []


def tracing_filter() -> RequestIdFilter:
    request_id_filter = RequestIdFilter()
    request_id_filter.tracing = True
    return request_id_filter


SPAN = trace.NonRecordingSpan(trace.SpanContext(trace_id=0xABC, span_id=0xDEF, is_remote=False))


def test_json_lines_carry_the_trace_and_span_ids_when_tracing() -> None:
    record = make_record("hello")
    with trace.use_span(SPAN):
        tracing_filter().filter(record)

    line = json_line(record)

    assert (line["trace_id"], line["span_id"]) == (f"{0xABC:032x}", f"{0xDEF:016x}")


def test_json_lines_carry_no_trace_id_outside_a_trace() -> None:
    record = make_record("hello")
    tracing_filter().filter(record)

    assert "trace_id" not in json_line(record)


def test_with_tracing_off_no_line_looks_for_a_span() -> None:
    record = make_record("hello")
    with trace.use_span(SPAN):
        RequestIdFilter().filter(record)

    assert "trace_id" not in json_line(record)
