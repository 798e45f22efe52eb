"""One logging setup for the app and the server (Uvicorn's `log_config`, Gunicorn's
`logconfig_dict`): text lines, or JSON lines for log shippers (LOG_FORMAT=json)."""

import json
import logging
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from {{ cookiecutter.package_name }}.middleware import access_logger, request_id_var
from {{ cookiecutter.package_name }}.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(name)s] [%(request_id)s] %(message)s"
# Control characters as \xNN: a request's path can neither forge a text log line nor reach a terminal raw.
ESCAPED = {code: f"\\x{code:02x}" for code in (*range(32), 127)}
# What an access line's values (middleware.log_access) are called in a JSON line.
ACCESS_FIELDS = ("client", "method", "path", "http_version", "status", "duration_ms")


class RequestIdFilter(logging.Filter):
    """Stamp each record with the id of the request being served ("-" outside a request), and the
    ids of its OpenTelemetry trace and span when it is traced."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            record.trace = {"trace_id": f"{span.trace_id:032x}", "span_id": f"{span.span_id:016x}"}
        return True


class TextFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = record.message.translate(ESCAPED)
        return super().formatMessage(record)


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
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"default": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "default", "filters": ["request_id"]}},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # The servers' loggers write through the same handler, once (not again via the root).
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "gunicorn.error": {"handlers": ["stderr"], "level": level, "propagate": False},
            # The app's middleware writes the access log (with the request id): the servers' would repeat it.
            "uvicorn.access": {"handlers": [], "propagate": False},
            "gunicorn.access": {"handlers": [], "propagate": False},
        },
    }
