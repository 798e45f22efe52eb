"""The template's benchmark: the generated service against bare FastAPI, on this machine.

    python bench/run.py                    # make bench: everything (bench/run.py --help)
    python bench/instructions.py PROJECT   # callgrind instructions per request

projects.py bakes and installs the projects; servers.py starts, watches and stops the servers (with
the live tests' helpers in tests/support); load.py loads them with wrk; container.py does the same in
Docker; report.py writes docs/benchmark.md, the chart and the README table.
"""
