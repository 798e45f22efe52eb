"""`python -m {{ cookiecutter.package_name }}` serves the app in production mode (see server.py)."""

from {{ cookiecutter.package_name }}.server import main

main()
