"""How the app is served; rarely edited, and the app imports nothing from here. server.py starts
the server (`python -m {{ cookiecutter.package_name }}`), protocol.py adds what Uvicorn's HTTP protocol lacks,
logging_config.py sets up logging for app and server alike. docs/operations.md says why each
default, and lists the workarounds for upstream bugs with when to delete each.
"""
