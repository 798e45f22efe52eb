"""`python -m {{ cookiecutter.package_name }}`: the production server (serving/server.py){% if cookiecutter.database != "none" %}; `... migrate`, `... revision`: the migrations{% endif %}."""

{% if cookiecutter.database != "none" -%}
import sys

from {{ cookiecutter.package_name }}.migrations import main as migrations
from {{ cookiecutter.package_name }}.serving.server import main

# migrate: the release step (docs/operations.md); revision "what changed": a new migration from models.py
migrations(sys.argv[1:]) if sys.argv[1:2] in (["migrate"], ["revision"]) else main()
{% else -%}
from {{ cookiecutter.package_name }}.serving.server import main

main()
{% endif -%}
