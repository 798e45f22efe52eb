"""{{ cookiecutter.package_name }}: a FastAPI service."""

__version__ = "{{ cookiecutter.version }}"  # the one place it is written: pyproject.toml reads it from here
