"""Logging for every runner, configured in one place.

The server is handed `logging_config(settings)` (Uvicorn's `log_config`, Gunicorn's
`logconfig_dict`), so the server's lines and the app's share one format: text by default, JSON lines
with `{{ cookiecutter.package_name | upper }}_LOG_FORMAT=json`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
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
        second, text = self._second
        if int(record.created) != second:
            second = int(record.created)
            text = time.strftime(self.default_time_format, self.converter(second))
            self._second = (second, text)
        return f"{text},{int(record.msecs):03d}"


class JsonFormatter(Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class StderrHandler(logging.Handler):
    """Log lines to stderr. On an event loop's thread the lines of one turn of the loop go out in
    one write instead of one write each: under load many requests finish in the same turn, and each
    write is a system call plus a wake-up of whatever reads stderr (journald, Docker). Python's own
    stderr buffering cannot do this: it flushes every line (and PYTHONUNBUFFERED, which the Docker
    image sets, writes every call). Anywhere else (other threads, no loop running) a line is
    written at once, after any lines still waiting, so the order is kept."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._write(line)
                return
            if not self._pending:
                loop.call_soon(self.flush)
            self._pending.append(line)
        except Exception:  # logging must never break the caller: the stdlib reports it instead
            self.handleError(record)

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
