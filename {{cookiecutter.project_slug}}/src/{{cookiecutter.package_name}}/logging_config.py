"""Logging for every runner, configured in one place.

The server is handed `logging_config(settings)` (Uvicorn's `log_config`, Gunicorn's
`logconfig_dict`), so the server's lines and the app's share one format: text by default, JSON lines
with the LOG_FORMAT setting at json.
"""

from __future__ import annotations

import json
import logging
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


class JsonFormatter(logging.Formatter):
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


def logging_config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` dictionary: one stderr handler for the app and the server."""
    level = settings.log_level.upper()
    server_loggers = ("uvicorn", "uvicorn.error", "gunicorn.error")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "text": {"format": TEXT_FORMAT},
            "json": {"()": JsonFormatter},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
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
