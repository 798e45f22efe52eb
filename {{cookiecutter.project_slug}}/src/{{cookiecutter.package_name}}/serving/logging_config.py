"""One logging setup for app and server (Uvicorn's `log_config`, Gunicorn's `logconfig_dict`): text or JSON lines."""

import json
import logging
import re
from datetime import UTC, datetime
from functools import partial
from typing import Any

from opentelemetry import trace

from {{ cookiecutter.package_name }} import context
from {{ cookiecutter.package_name }}.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(name)s] [%(request_id)s] %(message)s"
# C0 and C1 controls, Unicode line and paragraph separators and format characters (bidi overrides):
# written as \xNN or \uNNNN, a request's text can neither forge a log line nor reach a terminal raw.
CONTROLS = re.compile(
    "[\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]"
)
escape = partial(CONTROLS.sub, lambda match: match.group().encode("unicode_escape").decode("ascii"))


class RequestIdFilter(logging.Filter):
    """Stamps the id of the request being served ("-" outside one) and, when tracing, its trace and span ids."""

    tracing = False  # logging_config() sets it from the settings

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = context.request_id_var.get()
        if self.tracing and (span := trace.get_current_span().get_span_context()).is_valid:
            record.trace = {"trace_id": f"{span.trace_id:032x}", "span_id": f"{span.span_id:016x}"}
        return True


class TextFormatter(logging.Formatter):  # a message's next lines are indented, as a traceback's (a lifespan's)
    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = "\n  ".join(map(escape, record.message.split("\n")))
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:  # each line indented: an unindented line is a log record
        return "\n".join("  " + escape(line) for line in super().formatException(ei).splitlines())


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
        if record.name == context.ACCESS_LOGGER and isinstance(record.args, tuple):
            fields.update(zip(context.ACCESS_FIELDS, record.args, strict=True))
        fields.update(getattr(record, "trace", {}))  # RequestIdFilter's, when tracing
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return json.dumps(fields)  # \uNNNN for every non-ASCII character: no control reaches the log raw


def logging_config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` dictionary: one stderr handler for the app and the server."""
    level = settings.log_level.upper()
    formatter = {"()": JsonFormatter} if settings.log_format == "json" else {"()": TextFormatter, "fmt": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter, ".": {"tracing": settings.telemetry}}},
        "formatters": {"default": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "default", "filters": ["request_id"]}},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # The servers' lines through the same handler, once; their access logs off (the app's has the ids).
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
{%- if cookiecutter.server == "gunicorn" %}
            "gunicorn.error": {"handlers": ["stderr"], "level": level, "propagate": False},
            "gunicorn.access": {"handlers": [], "propagate": False},
{%- endif %}
        },
    }
