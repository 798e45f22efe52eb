"""`python -m {{ cookiecutter.package_name }}`: the production server (serving/server.py){% if cookiecutter.database != "none" %}; `... migrate`: the migrations{% endif %}."""

{% if cookiecutter.database != "none" -%}
import sys

from {{ cookiecutter.package_name }}.serving.server import main

if sys.argv[1:] == ["migrate"]:  # the release step, before the service starts (docs/operations.md)
    from {{ cookiecutter.package_name }}.migrations import main as migrate

    migrate()
else:
    main()
{% else -%}
from {{ cookiecutter.package_name }}.serving.server import main

main()
{% endif -%}
