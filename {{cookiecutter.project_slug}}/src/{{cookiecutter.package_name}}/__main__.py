"""`python -m {{ cookiecutter.package_name }}`: the production server (serving/server.py){% if cookiecutter.database != "none" %}; `... migrate`: the migrations{% endif %}."""

{% if cookiecutter.database != "none" -%}
import sys

from {{ cookiecutter.package_name }}.migrations import main as migrate
from {{ cookiecutter.package_name }}.serving.server import main

migrate() if sys.argv[1:] == ["migrate"] else main()  # migrate: the release step (docs/operations.md)
{% else -%}
from {{ cookiecutter.package_name }}.serving.server import main

main()
{% endif -%}
