"""Probes. /livez: the process answers (touches nothing else). /readyz: ready for traffic."""

from typing import Literal

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel
{%- if cookiecutter.database != "none" %}

from {{ cookiecutter.package_name }}.database import database_ready
{%- endif %}

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["alive", "ready", "starting", "stopping"{% if cookiecutter.database != "none" %}, "database unreachable"{% endif %}]


@router.get("/livez")
async def livez() -> Health:
    return Health(status="alive")


@router.get("/readyz", responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": Health}})
async def readyz(request: Request, response: Response) -> Health:
    readiness = request.app.state.readiness
{%- if cookiecutter.database != "none" %}
    if readiness == "ready" and not await database_ready(request.app):
        readiness = "database unreachable"
{%- endif %}
    if readiness != "ready":
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(status=readiness)
