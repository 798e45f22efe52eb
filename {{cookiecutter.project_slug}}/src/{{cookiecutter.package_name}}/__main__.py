"""`python -m {{ cookiecutter.package_name }}`: the production server (serving/server.py)."""

from {{ cookiecutter.package_name }}.serving.server import main

main()
