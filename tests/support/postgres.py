"""A throwaway PostgreSQL server on 127.0.0.1, for the database tests and the benchmark's database row.

Debian's server binaries (/usr/lib/postgresql/<version>/bin, the newest installed); PostgreSQL refuses
to run as root, so as root its tools run as the postgres user (runuser). Its own data folder in the
temporary folder (not pytest's: the postgres user must enter it), a free port, its log in `logfile`
there; stopped and removed at exit. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.support.live_server import LOOPBACK, free_port

# Debian's PostgreSQL server binaries (15 on bookworm, 17 on trixie): the newest installed.
PG_BIN = max(
    Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name), default=Path("/nonexistent")
)
POSTGRES_MISSING = "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql"


def postgres_installed() -> bool:
    return (PG_BIN / "initdb").exists() and (os.geteuid() != 0 or shutil.which("runuser") is not None)


def as_postgres(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its tools as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextlib.contextmanager
def postgres_server(*settings: str) -> Iterator[str]:
    """A PostgreSQL server for the length of a with-block; its server URL (database postgres).
    `settings` are extra `-c name=value` options (e.g. "max_connections=200")."""
    folder = Path(tempfile.mkdtemp(prefix="pg-"))
    folder.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    data, port = folder / "data", free_port()
    subprocess.run(
        as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = " ".join([f"-p {port} -k {folder} -c listen_addresses={LOOPBACK}", *(f"-c {s}" for s in settings)])
    ctl = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(folder / "logfile")]
    try:
        subprocess.run(as_postgres([*ctl, "-o", options, "-w", "start"]), check=True, capture_output=True, timeout=120)
        yield f"postgresql+psycopg://postgres@{LOOPBACK}:{port}/postgres"
    finally:
        subprocess.run(as_postgres([*ctl, "-m", "fast", "stop"]), capture_output=True, timeout=120, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    """A new, empty database on the server; its URL."""
    port = server_url.rsplit(":", 1)[1].split("/")[0]
    subprocess.run(
        as_postgres([str(PG_BIN / "createdb"), "-h", LOOPBACK, "-p", port, "-U", "postgres", name]),
        check=True,
        capture_output=True,
        timeout=60,
    )
    return server_url.rsplit("/", 1)[0] + f"/{name}"
