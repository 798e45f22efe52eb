from __future__ import annotations

import json
import logging

from {{ cookiecutter.package_name }}.logging_config import (
    JsonFormatter,
    RequestIdFilter,
    logging_config,
    request_id_var,
)
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
