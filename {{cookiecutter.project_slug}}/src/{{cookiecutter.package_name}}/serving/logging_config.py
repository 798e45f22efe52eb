"""One logging setup for app and server (Uvicorn's `log_config`, Gunicorn's `logconfig_dict`): text or JSON lines."""

import asyncio
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace

from {{ cookiecutter.package_name }}.middleware import access_logger, request_id_var
from {{ cookiecutter.package_name }}.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(name)s] [%(request_id)s] %(message)s"
# Control characters as \xNN: a request's path can neither forge a text log line nor reach a terminal raw.
ESCAPED = {code: f"\\x{code:02x}" for code in (*range(32), 127)}
TRACEBACK_ESCAPED = {**ESCAPED, ord("\n"): "\n  "}  # each traceback line indented: unindented is a log record
ACCESS_FIELDS = ("client", "method", "path", "http_version", "status", "duration_ms")  # log_access's args in JSON


class RequestIdFilter(logging.Filter):
    """Stamps the id of the request being served ("-" outside one) and, when tracing, its trace and span ids."""

    tracing = False  # logging_config() sets it from the settings

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        if self.tracing and (span := trace.get_current_span().get_span_context()).is_valid:
            record.trace = {"trace_id": f"{span.trace_id:032x}", "span_id": f"{span.span_id:016x}"}
        return True


class TurnBufferedHandler(logging.StreamHandler[TextIO]):
    """stderr, written once per event-loop turn, not per line: a system call and a reader wake-up each (docs/operations.md)."""

    def __init__(self) -> None:
        super().__init__(open(sys.stderr.fileno(), "w", 65536, "utf-8", "backslashreplace", closefd=False))  # noqa: SIM115

    def flush(self) -> None:
        try:
            asyncio.get_running_loop().call_soon(super().flush)  # the turn's first call writes them all
        except RuntimeError:  # no loop in this thread (start-up, exit, a worker thread): at once
            super().flush()

    def close(self) -> None:  # logging.shutdown(), maybe just before os._exit(): what is buffered, now
        super().flush()
        super().close()


class TextFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = record.message.translate(ESCAPED)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return "  " + super().formatException(ei).translate(TRACEBACK_ESCAPED)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, request_id, message, and more."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.name == access_logger.name and isinstance(record.args, tuple):
            fields.update(zip(ACCESS_FIELDS, record.args, strict=True))
        fields.update(getattr(record, "trace", {}))  # RequestIdFilter's, when tracing
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return json.dumps(fields, ensure_ascii=False)


def logging_config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` dictionary: one stderr handler for the app and the server."""
    level = settings.log_level.upper()
    formatter = {"()": JsonFormatter} if settings.log_format == "json" else {"()": TextFormatter, "fmt": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter, ".": {"tracing": settings.telemetry}}},
        "formatters": {"default": formatter},
        "handlers": {"stderr": {"()": TurnBufferedHandler, "formatter": "default", "filters": ["request_id"]}},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # The servers' lines through the same handler, once; their access logs off (the app's has the ids).
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "propagate": False},
{%- if cookiecutter.runner == "gunicorn" %}
            "gunicorn.error": {"handlers": ["stderr"], "level": level, "propagate": False},
            "gunicorn.access": {"handlers": [], "propagate": False},
{%- endif %}
        },
    }
