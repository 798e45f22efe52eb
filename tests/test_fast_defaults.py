"""The configuration that makes the generated service fast, checked in installed projects.

No timing here (tools/bench measures; a timing assertion on a shared machine is a flaky test).
These guard what the speed rests on: pure ASGI middleware only, uvloop and httptools chosen by
Uvicorn's "auto", the server's own access log off so the app's one is the only one, declared
response models (pydantic's serialiser), and Gunicorn
workers that are not recycled under load.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PACKAGINGS, run

pytestmark = pytest.mark.install

# Run with the project's own interpreter: prints one JSON object of facts about the installed project.
UVICORN_PROBE = """
import json, logging, sys
import uvicorn
from starlette.middleware.base import BaseHTTPMiddleware
from fastapi.routing import APIRoute
from PKG.main import create_app
from PKG.routers import health, root
from PKG.serving.server import uvicorn_options
from PKG.settings import Settings

settings = Settings(_env_file=None)
app = create_app(settings)
layer, stack = app.build_middleware_stack(), []
while layer is not None and len(stack) < 50:
    stack.append(layer)
    layer = getattr(layer, "app", None)
options = uvicorn_options(settings)
options.pop("workers")
config = uvicorn.Config("PKG.main:app", **options)  # applies the project's logging config, as uvicorn.run does
config.load()
loop = config.get_loop_factory()()
loop.close()
routes = [route for module in (root, health) for route in module.router.routes if isinstance(route, APIRoute)]
print(json.dumps({
    "stack": [type(layer).__name__ for layer in stack],
    "base_http_middleware": [type(layer).__name__ for layer in stack if isinstance(layer, BaseHTTPMiddleware)],
    "loop": type(loop).__module__,
    "http": config.http_protocol_class.__name__,
    "server_access_log_has_handlers": logging.getLogger("uvicorn.access").hasHandlers(),
    "app_access_log_has_handlers": logging.getLogger("PKG.access").hasHandlers(),
    "app_access_log_enabled": logging.getLogger("PKG.access").isEnabledFor(logging.INFO),
    "routes_without_response_model": [route.path for route in routes if route.response_model is None],
}))
"""

# The Gunicorn server: Gunicorn's logging set up from serving/gunicorn_conf.py, then a real UvicornWorker
# built as the arbiter builds it (not started), so its Uvicorn config is the one workers use.
GUNICORN_PROBE = """
import json, logging, os, runpy
import uvicorn_worker
from gunicorn.config import Config
from gunicorn.glogging import Logger
from PKG.main import create_app

values = runpy.run_module("PKG.serving.gunicorn_conf")
cfg = Config()
for name, value in values.items():
    if name in cfg.settings:
        cfg.set(name, value)
worker_class = cfg.worker_class
worker = worker_class(0, os.getpid(), [], None, cfg.timeout, cfg, Logger(cfg))
worker.config.app = create_app()
worker.config.load()
loop = worker.config.get_loop_factory()()
loop.close()
print(json.dumps({
    "worker_class_is_uvicorn_worker": issubclass(worker_class, uvicorn_worker.UvicornWorker),
    "loop": type(loop).__module__,
    "http": worker.config.http_protocol_class.__name__,
    "server_access_log_has_handlers": logging.getLogger("uvicorn.access").hasHandlers(),
    "gunicorn_access_log_has_handlers": logging.getLogger("gunicorn.access").hasHandlers(),
    "app_access_log_has_handlers": logging.getLogger("PKG.access").hasHandlers(),
    "max_requests": cfg.max_requests,
}))
"""

_facts: dict[tuple[str, str], dict[str, Any]] = {}


def probe(installed_project: Callable[..., Path], server: str, script: str) -> dict[str, Any]:
    """The facts the script prints, from the server's installed project (once per test process). The
    packaging adds no serving code of its own (tests/test_bake.py): the default one stands for both."""
    key = (server, script)
    if key not in _facts:
        project = installed_project(server, PACKAGINGS[0])
        (package,) = (path.parent.name for path in (project / "src").glob("*/__init__.py"))
        result = run([str(project / ".venv/bin/python"), "-c", script.replace("PKG", package)], project)
        assert result.returncode == 0, f"probe failed:\n{result.stdout}\n{result.stderr}"
        _facts[key] = json.loads(result.stdout.strip().splitlines()[-1])
    return _facts[key]


def test_no_base_http_middleware_in_the_stack(installed_project: Callable[..., Path]) -> None:
    assert probe(installed_project, "uvicorn", UVICORN_PROBE)["base_http_middleware"] == []


def test_the_edge_middleware_is_in_the_stack(installed_project: Callable[..., Path]) -> None:
    """So the check above walked the real stack, not an empty one."""
    assert "RequestContextMiddleware" in probe(installed_project, "uvicorn", UVICORN_PROBE)["stack"]


def test_auto_loop_is_uvloop(installed_project: Callable[..., Path]) -> None:
    assert probe(installed_project, "uvicorn", UVICORN_PROBE)["loop"].startswith("uvloop")


def test_http_is_httptools(installed_project: Callable[..., Path]) -> None:
    assert probe(installed_project, "uvicorn", UVICORN_PROBE)["http"] == "HttpToolsProtocol"


def test_uvicorn_access_log_is_off(installed_project: Callable[..., Path]) -> None:
    """Uvicorn writes access lines only when its access logger has handlers."""
    assert probe(installed_project, "uvicorn", UVICORN_PROBE)["server_access_log_has_handlers"] is False


def test_the_apps_access_log_is_on(installed_project: Callable[..., Path]) -> None:
    facts = probe(installed_project, "uvicorn", UVICORN_PROBE)

    assert (facts["app_access_log_has_handlers"], facts["app_access_log_enabled"]) == (True, True)


def test_every_template_route_declares_its_response_model(installed_project: Callable[..., Path]) -> None:
    """A declared return type makes FastAPI serialise with pydantic's compiled core."""
    assert probe(installed_project, "uvicorn", UVICORN_PROBE)["routes_without_response_model"] == []


def test_gunicorn_workers_are_uvicorn_workers(installed_project: Callable[..., Path]) -> None:
    assert probe(installed_project, "gunicorn", GUNICORN_PROBE)["worker_class_is_uvicorn_worker"] is True


def test_gunicorn_workers_run_uvloop(installed_project: Callable[..., Path]) -> None:
    assert probe(installed_project, "gunicorn", GUNICORN_PROBE)["loop"].startswith("uvloop")


def test_gunicorn_workers_parse_with_httptools(installed_project: Callable[..., Path]) -> None:
    assert probe(installed_project, "gunicorn", GUNICORN_PROBE)["http"] == "HttpToolsProtocol"


def test_gunicorn_workers_write_no_server_access_log(installed_project: Callable[..., Path]) -> None:
    facts = probe(installed_project, "gunicorn", GUNICORN_PROBE)

    assert (facts["server_access_log_has_handlers"], facts["gunicorn_access_log_has_handlers"]) == (False, False)


def test_gunicorn_workers_keep_the_apps_access_log(installed_project: Callable[..., Path]) -> None:
    assert probe(installed_project, "gunicorn", GUNICORN_PROBE)["app_access_log_has_handlers"] is True


def test_gunicorn_workers_are_not_recycled_under_load(installed_project: Callable[..., Path]) -> None:
    """Each recycled worker is a cold start, and its keep-alive clients stay on the other workers: at
    100,000 requests both workers of bench/run.py recycled within a second every 15 s of load, and
    half the 2-worker rounds then ran on one worker (7.5-10k requests/s instead of 13k)."""
    assert probe(installed_project, "gunicorn", GUNICORN_PROBE)["max_requests"] == 0
