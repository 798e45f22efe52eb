"""The template's benchmark: the generated service against bare FastAPI on this machine
(`make bench`, or `python -m tools.bench --help`). One job per module: projects.py bakes and installs,
servers.py says what runs and starts it, load.py loads with wrk, instructions.py counts callgrind
instructions, report.py writes docs/benchmark.md and the README block; __main__.py runs them in order.
"""
