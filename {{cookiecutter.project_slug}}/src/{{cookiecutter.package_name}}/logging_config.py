"""Logging for every runner, configured in one place.

The server is handed `logging_config(settings)` (Uvicorn's `log_config`, Gunicorn's
`logconfig_dict`), so the server's lines and the app's share one format: text by default, JSON lines
with the LOG_FORMAT setting at json.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from {{ cookiecutter.package_name }}.settings import Settings

# The id of the request being served, for every log line written while serving it.
request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(name)s] [%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    """Stamp each record with the current request id."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class Formatter(logging.Formatter):
    """The standard formatter, with the date and time formatted once a second instead of per line
    (strftime was a third of the cost of formatting an access line). Same text as the stdlib's."""

    _second: tuple[int, str] = (-1, "")  # one tuple, so threads never see half an update

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt:
            return super().formatTime(record, datefmt)
        return self.time_text(record.created, record.msecs)

    def time_text(self, created: float, msecs: float) -> str:
        second, text = self._second
        if int(created) != second:
            second = int(created)
            text = time.strftime(self.default_time_format, self.converter(second))
            self._second = (second, text)
        return f"{text},{int(msecs):03d}"

    def formats_from_fields(self) -> bool:
        """Whether line_maker() gives this formatter's text: its format's fields are all plain
        `%(name)s` ones of FIELDS."""
        fmt = self._fmt or ""
        fields = re.findall(r"%\((\w+)\)", fmt)
        return (
            isinstance(self._style, logging.PercentStyle)
            and not self.datefmt
            and "%%" not in fmt
            and fields == PLAIN_FIELD.findall(fmt)
            and set(fields) <= FIELDS
        )

    def line_maker(self, levelname: str, name: str) -> Callable[[float, str], str]:
        """A function giving, from a time and a message, the line format() writes for a record of
        this level and logger holding only that (and the current request id). The fixed fields are
        filled in here, once; each line is then one str.format call."""
        fixed = {"levelname": levelname, "name": name}
        template = ""
        # Split by the fields' pattern: text, field name, text, field name, ..., text.
        for index, part in enumerate(PLAIN_FIELD.split(self._fmt or "")):
            if index % 2 == 0:
                template += escape_braces(part)
            elif part in fixed:
                template += escape_braces(fixed[part])
            else:
                template += "{" + str(LINE_FIELDS.index(part)) + "}"
        fill = template.format
        time_text = self.time_text

        def line(created: float, message: str) -> str:
            return fill(time_text(created, (created - int(created)) * 1000), request_id_var.get(), message)

        return line


class JsonFormatter(Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = self.entry(record.created, record.levelname, record.name, record.getMessage())
        entry["request_id"] = getattr(record, "request_id", "-")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)

    def entry(self, created: float, levelname: str, name: str, message: str) -> dict[str, Any]:
        return {
            "time": self.time_text(created, (created - int(created)) * 1000),
            "level": levelname,
            "logger": name,
            "request_id": request_id_var.get(),
            "message": message,
        }

    def formats_from_fields(self) -> bool:
        return True

    def line_maker(self, levelname: str, name: str) -> Callable[[float, str], str]:
        def line(created: float, message: str) -> str:
            return json.dumps(self.entry(created, levelname, name, message), ensure_ascii=False)

        return line


class StderrHandler(logging.Handler):
    """Log lines to stderr.

    Access lines written on an event loop's thread (write_line, from AccessLog) wait for the end
    of the loop's turn and go out together in one write: under load many requests finish in the
    same turn, and each write is a system call plus a wake-up of whatever reads stderr (journald,
    Docker). Python's stderr cannot batch them: it flushes every line, and with PYTHONUNBUFFERED
    (set in the Docker image) writes every call. Every other line is written at once, after any
    waiting access lines, so the order holds and nothing waits when the server exits (Uvicorn ends
    the process by re-raising the stop signal, with no chance to flush later).
    """

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._write(self.format(record) + "\n")
        except Exception:  # logging must never break the caller: the stdlib reports it instead
            self.handleError(record)

    def write_line(self, line: str) -> None:
        """Write an access line already formatted: at the end of the loop's turn when on a loop."""
        self.acquire()
        try:
            if not self._pending:
                # The turn's first line schedules the write. (Lines waiting means one is scheduled;
                # and Python 3.11's get_running_loop() makes a system call, so once a turn will do.)
                try:
                    asyncio.get_running_loop().call_soon(self.flush)
                except RuntimeError:
                    self._write(line + "\n")
                    return
            self._pending.append(line + "\n")
        finally:
            self.release()

    def flush(self) -> None:
        self.acquire()
        try:
            self._write("")
        finally:
            self.release()

    def _write(self, text: str) -> None:
        """Write the waiting lines and then text (the caller holds the handler's lock)."""
        if self._pending:
            text = "".join(self._pending) + text
            self._pending.clear()
        if text:
            stream = sys.stderr  # looked up each time: tests and tools swap it
            stream.write(text)
            stream.flush()


# What Formatter.line_maker() can fill in; of those, the ones that change from line to line.
FIELDS = frozenset({"asctime", "levelname", "name", "request_id", "message"})
LINE_FIELDS = ("asctime", "request_id", "message")
PLAIN_FIELD = re.compile(r"%\((\w+)\)s")


def escape_braces(text: str) -> str:
    """Text as it reads in a str.format template (doubled braces)."""
    return text.replace("{", "{" * 2).replace("}", "}" * 2)


class AccessLog:
    """Writes the access line of each request for the middleware.

    When the access logger's lines go to one StderrHandler alone with one of the formatters above
    (the configuration logging_config() gives), the line is formatted from its few fields and
    handed to that handler directly: the same text, without making a LogRecord and passing it
    through the logger hierarchy, handler and formatter machinery, which cost most of an access
    line's time under load (the template's bench/run.py measures it). Any other setup (a test's
    capture handler, another formatter or handler, filters) gets a standard record. Which one is
    settled when the middleware is built (at the app's first request, after the server has
    configured logging); the logger's level is honoured on every line.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.direct = direct_route(logger)
        self.write_line: Callable[[str], None] | None = None
        if self.direct is not None:
            handler, formatter = self.direct
            self.write_line = handler.write_line
            self.make_line = formatter.line_maker(logging.getLevelName(logging.INFO), logger.name)

    def write(self, message: str) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        if self.write_line is not None:
            self.write_line(self.make_line(time.time(), message))
            return
        # No caller lookup (Logger.info walks the stack for it): this record's place is always the same.
        self.logger.handle(self.logger.makeRecord(self.logger.name, logging.INFO, __file__, 0, message, (), None))


def direct_route(logger: logging.Logger) -> tuple[StderrHandler, Formatter] | None:
    """The handler and formatter a record of logger would reach when nothing else would see it."""
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters or current.disabled:
            return None
        handlers += current.handlers
        current = current.parent if current.propagate else None
    if len(handlers) != 1:
        return None
    (handler,) = handlers
    formatter = handler.formatter
    if (
        not isinstance(handler, StderrHandler)
        or handler.level > logging.INFO
        or not all(isinstance(one, RequestIdFilter) for one in handler.filters)
        or not isinstance(formatter, Formatter)
        or not formatter.formats_from_fields()
    ):
        return None
    return handler, formatter


def logging_config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` dictionary: one stderr handler for the app and the server."""
    level = settings.log_level.upper()
    server_loggers = ("uvicorn", "uvicorn.error", "gunicorn.error")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "text": {"()": Formatter, "fmt": TEXT_FORMAT},
            "json": {"()": JsonFormatter},
        },
        "handlers": {
            "stderr": {
                "()": StderrHandler,
                "formatter": settings.log_format,
                "filters": ["request_id"],
            },
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # The servers' own loggers write through the same handler (not twice via the root).
            **{name: {"handlers": ["stderr"], "level": level, "propagate": False} for name in server_loggers},
            # The app's middleware writes the access log; the servers' would repeat each line.
            "uvicorn.access": {"handlers": [], "propagate": False},
            "gunicorn.access": {"handlers": [], "propagate": False},
        },
    }
