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

from starlette.types import Scope

from {{ cookiecutter.package_name }}.settings import Settings

# The id of the request being served, for every log line written while serving it.
request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(name)s] [%(request_id)s] %(message)s"

# An access line's message: client "METHOD path HTTP/version" status duration.
ACCESS_MESSAGE = '{0} "{1} {2} HTTP/{3}" {4} {5:.1f}ms'
# What an access line is made from: (time.time(), request id, client, method, path, HTTP version,
# status, duration in ms), the last six being ACCESS_MESSAGE's fields.
AccessEntry = tuple[float, str, str, str, str, str, int, float]


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
        return f"{self.second_text(created)},{int(msecs):03d}"

    def second_text(self, created: float) -> str:
        """The date and time to the second (without the milliseconds)."""
        second, text = self._second
        if int(created) != second:
            second = int(created)
            text = time.strftime(self.default_time_format, self.converter(second))
            self._second = (second, text)
        return text

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

    def line_maker(self, levelname: str, name: str) -> Callable[[AccessEntry], str]:
        """A function giving, from an access entry, the line (newline included) format() writes
        for a record of this level and logger with the entry's time, request id and message
        (ACCESS_MESSAGE filled with the entry's fields). The fixed fields are filled in here, once;
        each line is then one str.format call, which reads the entry's fields itself."""
        fixed = {"levelname": levelname, "name": name}
        # Called as fill(entry, date and time to the second, milliseconds).
        variable = {"asctime": "{1},{2:03d}", "request_id": "{0[1]}", "message": entry_message_template()}
        template = ""
        # Split by the fields' pattern: text, field name, text, field name, ..., text.
        for index, part in enumerate(PLAIN_FIELD.split(self._fmt or "")):
            if index % 2 == 0:
                template += escape_braces(part)
            elif part in fixed:
                template += escape_braces(fixed[part])
            else:
                template += variable[part]
        fill = (template + "\n").format
        second_text = self.second_text

        def line(entry: AccessEntry) -> str:
            created = entry[0]
            return fill(entry, second_text(created), int((created - int(created)) * 1000))

        return line


class JsonFormatter(Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", "-")
        fields = self.fields(record.created, record.levelname, record.name, request_id, record.getMessage())
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return json.dumps(fields, ensure_ascii=False)

    def fields(self, created: float, levelname: str, name: str, request_id: str, message: str) -> dict[str, Any]:
        return {
            "time": self.time_text(created, (created - int(created)) * 1000),
            "level": levelname,
            "logger": name,
            "request_id": request_id,
            "message": message,
        }

    def formats_from_fields(self) -> bool:
        return True

    def line_maker(self, levelname: str, name: str) -> Callable[[AccessEntry], str]:
        fields, message = self.fields, ACCESS_MESSAGE.format

        def line(entry: AccessEntry) -> str:
            text = json.dumps(fields(entry[0], levelname, name, entry[1], message(*entry[2:])), ensure_ascii=False)
            return text + "\n"

        return line


class StderrHandler(logging.Handler):
    """Log lines to stderr.

    Access entries handed over on an event loop's thread (write_later, from AccessLog) wait for
    the end of the loop's turn, are made into lines there, one after the other, and go out together
    in one write: under load many requests finish in the same turn, and each write is a system call
    plus a wake-up of whatever reads stderr (journald, Docker). Python's stderr cannot batch them:
    it flushes every line, and with PYTHONUNBUFFERED (set in the Docker image) writes every call.
    Making the lines in one run rather than each amid its request's work also cut the access log's
    cost under load by about a third (the template's bench/run.py measures it). Every other line is
    written at once, after any waiting access lines, so the order holds and nothing waits when the
    server exits (Uvicorn ends the process by re-raising the stop signal, with no chance to flush
    later).
    """

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[tuple[Callable[[AccessEntry], str], AccessEntry]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._write(self.format(record) + "\n")
        except Exception:  # logging must never break the caller: the stdlib reports it instead
            self.handleError(record)

    def write_later(self, make_line: Callable[[AccessEntry], str], entry: AccessEntry) -> None:
        """Write make_line(entry), a line with its newline: at the end of the loop's turn when on a
        loop, else at once."""
        self.acquire()
        try:
            if not self._pending:
                # The turn's first entry schedules the write. (Entries waiting means one is scheduled;
                # and Python 3.11's get_running_loop() makes a system call, so once a turn will do.)
                try:
                    asyncio.get_running_loop().call_soon(self.flush)
                except RuntimeError:
                    self._write(make_line(entry))
                    return
            self._pending.append((make_line, entry))
        finally:
            self.release()

    def flush(self) -> None:
        self.acquire()
        try:
            self._write("")
        finally:
            self.release()

    def _write(self, text: str) -> None:
        """Write the waiting access lines and then text (the caller holds the handler's lock)."""
        if self._pending:
            pending, self._pending = self._pending, []  # taken first: a failing line drops the batch once
            text = "".join([make_line(entry) for make_line, entry in pending]) + text
        if text:
            stream = sys.stderr  # looked up each time: tests and tools swap it
            stream.write(text)
            stream.flush()


# What Formatter.line_maker() can fill in.
FIELDS = frozenset({"asctime", "levelname", "name", "request_id", "message"})
PLAIN_FIELD = re.compile(r"%\((\w+)\)s")
FIELD_NUMBER = re.compile(r"\{(\d+)")


def entry_message_template() -> str:
    """ACCESS_MESSAGE as a template filled by fill(entry, ...): field n reads the entry's item n + 2."""
    return FIELD_NUMBER.sub(lambda number: "{0[" + str(int(number[1]) + 2) + "]", ACCESS_MESSAGE)


def escape_braces(text: str) -> str:
    """Text as it reads in a str.format template (doubled braces)."""
    return text.replace("{", "{" * 2).replace("}", "}" * 2)


class AccessLog:
    """Writes the access line of each request for the middleware.

    When the access logger's lines go to one StderrHandler alone with one of the formatters above
    (the configuration logging_config() gives), the request's fields are handed to that handler
    as they are, and made into the same text the formatter would write at the end of the loop's
    turn: no LogRecord, no trip through the logger hierarchy, handler and formatter machinery,
    which cost most of an access line's time under load (the template's bench/run.py measures it).
    Any other setup (a test's capture handler, another formatter or handler, filters) gets a
    standard record. Which one is settled when the middleware is built (at the app's first request,
    after the server has configured logging); the logger's level is honoured on every line.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.direct = direct_route(logger)
        self.write_later: Callable[[Callable[[AccessEntry], str], AccessEntry], None] | None = None
        if self.direct is not None:
            handler, formatter = self.direct
            self.write_later = handler.write_later
            self.make_line = formatter.line_maker(logging.getLevelName(logging.INFO), logger.name)

    def write(self, scope: Scope, status: int, duration_ms: float) -> None:
        """Log one HTTP request (its ASGI scope), the status it was answered with and how long that took."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        client = scope.get("client")
        fields = (client[0] if client else "-", scope["method"], scope["path"], scope["http_version"])
        if self.write_later is not None:
            self.write_later(self.make_line, (time.time(), request_id_var.get(), *fields, status, duration_ms))
            return
        message = ACCESS_MESSAGE.format(*fields, status, duration_ms)
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
