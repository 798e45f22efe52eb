"""{{ cookiecutter.package_name }}: a FastAPI service."""

# The single place the version is written: pyproject.toml reads it from here.
__version__ = "{{ cookiecutter.version }}"
