"""What the app's middleware writes and the logging setup (serving/) reads: the request being served."""

from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")  # in every log line
ACCESS_LOGGER = "{{ cookiecutter.package_name }}.access"
ACCESS_FIELDS = ("client", "method", "target", "http_version", "status", "duration_ms")  # its args, as JSON fields
