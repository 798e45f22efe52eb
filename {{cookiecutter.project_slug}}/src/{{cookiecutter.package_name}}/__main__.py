"""What `python -m <this package>` runs: the production server (see server.py)."""

from {{ cookiecutter.package_name }}.server import main

main()
