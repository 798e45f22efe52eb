"""Run a baked project's own `make run` on 127.0.0.1 and watch it, for the live tests.

The server is always started with the project's `make run` (never a copy of its command), in its own
session so that nothing it starts can outlive a test. Its processes are found through /proc: make's
child is the server; the server's children that announced "Started server process [pid]" (Uvicorn)
or "Spawning worker-N with PID: pid" (Granian) in the log are its workers (which leaves out helpers
such as multiprocessing's resource tracker).

`RequestStream` sends a steady, bounded stream of requests to 127.0.0.1 and counts what came back;
`wrk_command`/`WrkResult` run wrk and read its report; `wrk_under_fault` skips the calling test
with one line (`WRK_MISSING`) where wrk is not installed. The template's benchmark uses the same
helpers. Standard library and pytest only.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

LOOPBACK = "127.0.0.1"
WORKER_STARTED = re.compile(r"Started server process \[(\d+)\]|Spawning worker-\d+ with PID: (\d+)")


class ServerExited(AssertionError):
    """`make run` ended while a test was waiting for it."""


def figure(name: str, value: str) -> None:
    """A measured figure, printed for the closing report (visible with -rA)."""
    print(f"figure: {name}: {value}")


def free_port() -> int:
    """A TCP port nothing listens on right now, below the kernel's range for outgoing connections
    (32768 and up on Linux): the clients' sockets (wrk opens dozens) take theirs from that range, so
    a port picked there can be taken before the server binds it."""
    for _ in range(200):
        port = random.randrange(20_000, 32_000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found in 20000-32000")


TCP_ESTABLISHED = "01"  # the state column of /proc/net/tcp


def get(port: int, path: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    """One GET on a new connection to 127.0.0.1: (status, body). Raises OSError/HTTPException as met."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def children(pid: int) -> list[int]:
    """The direct children of a process (Linux: the children lists of its threads)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in task.read_text().split()]
    return found


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants, parents first."""
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop(0))
        todo += children(tree[-1])
    return tree


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat from field 3 on (the command name before it may hold spaces and ")")."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process tree has used so far, its reaped children included (a
    worker that ended still counts, in its parent's cutime/cstime)."""
    ticks = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, ValueError):
            ticks += sum(int(value) for value in _stat_fields(member)[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """Resident memory of one process in KiB (0 once it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cmdline(pid: int) -> str:
    """The command line of a process, arguments joined by spaces ("" once it is gone)."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    return ""


def established_socket_inodes(port: int) -> set[str]:
    """Inodes of the established TCP connections whose local port is `port` (Linux /proc tables)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == TCP_ESTABLISHED:
                    inodes.add(fields[9])
    return inodes


def connections_held(pid: int, inodes: set[str]) -> int:
    """How many of these sockets the process has open."""
    held = 0
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(descriptor)
            held += target.startswith("socket:[") and target[len("socket:[") : -1] in inodes
    return held


def is_running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        return _stat_fields(pid)[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> float:
    """Poll condition until true; returns the seconds it took. AssertionError naming `what` on timeout."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if condition():
            return time.monotonic() - start
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class LiveServer:
    """A running `make run` of one baked project."""

    project: Path
    port: int
    make: subprocess.Popen[bytes]
    log_path: Path
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def start(
        cls, project: Path, env: dict[str, str], log_path: Path, *, port: int | None = None, target: str = "run"
    ) -> LiveServer:
        """Start `make run` (or another target) with HOST=127.0.0.1 and PORT set (a free port unless given)."""
        port = port or free_port()
        env = {**env, "HOST": LOOPBACK, "PORT": str(port)}
        with open(log_path, "wb") as log_file:
            make = subprocess.Popen(
                ["make", target],
                cwd=project,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: close() can end everything it started
            )
        return cls(project=project, port=port, make=make, log_path=log_path)

    # --- looking at it -----------------------------------------------------------------------------

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
        return get(self.port, path, timeout=timeout)

    def check_running(self) -> None:
        if self.make.poll() is not None:
            raise ServerExited(f"make run exited with {self.make.returncode}:\n{self.log()[-3000:]}")

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Poll /readyz until it answers 200; returns the seconds since start. Fails if make exits."""

        def ready() -> bool:
            self.check_running()
            try:
                status, _ = self.get("/readyz", timeout=2.0)
            except (OSError, http.client.HTTPException):
                return False
            return status == 200

        wait_until(ready, timeout, f"/readyz on port {self.port} to answer 200", interval=0.05)
        return time.monotonic() - self.started

    def server_pid(self, timeout: float = 10.0) -> int:
        """The server process: make's child (make runs the recipe's single command directly)."""
        found: list[int] = []

        def has_child() -> bool:
            self.check_running()
            found[:] = children(self.make.pid)
            return bool(found)

        wait_until(has_child, timeout, "make to start the server process")
        assert len(found) == 1, f"make has {len(found)} children, expected the server alone: {found}"
        return found[0]

    def worker_pids(self) -> set[int]:
        """Live children of the server that announced themselves as workers in the log."""
        announced = {int(pid) for match in WORKER_STARTED.findall(self.log()) for pid in match if pid}
        return {pid for pid in children(self.server_pid()) if pid in announced and is_running(pid)}

    def wait_for_workers(self, count: int, *, without: Collection[int] = (), timeout: float = 75.0) -> set[int]:
        """Wait until exactly `count` workers run and none of them is in `without`; returns them. Uvicorn's
        supervisor notices a worker killed during its health check only after that check's 30 s
        (timeout_worker_healthcheck), hence the deadline."""
        workers: set[int] = set()

        def settled() -> bool:
            self.check_running()
            workers.clear()
            workers.update(self.worker_pids())
            return len(workers) == count and workers.isdisjoint(without)

        wait_until(settled, timeout, f"{count} workers (none of {sorted(without)})", interval=0.1)
        return workers

    # --- stopping it -------------------------------------------------------------------------------

    def signal_server(self, signum: int) -> None:
        os.kill(self.server_pid(), signum)

    def wait_exit(self, timeout: float) -> int:
        """Wait for make to end; returns its exit code (0 exactly when the server exited 0)."""
        return self.make.wait(timeout=timeout)

    def server_exit_code(self) -> int | None:
        """The server's own exit code as make reported it ("make: *** [...] Error N"); 0 when make
        exited 0; None when make said nothing (e.g. the server died by a signal)."""
        if self.make.returncode == 0:
            return 0
        match = re.search(r"make(?:\[\d+\])?: \*\*\* \[[^\]]*\] Error (\d+)", self.log())
        return int(match[1]) if match else None

    def close(self) -> None:
        """End whatever is left of the process group (after a failed test), then reap make."""
        if self.make.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.make.pid, signal.SIGKILL)
        self.make.wait(timeout=30)


@contextlib.contextmanager
def live_server(project: Path, env: dict[str, str], log_path: Path, *, target: str = "run") -> Iterator[LiveServer]:
    """`make run` (or another target) for the length of a with-block; always ended at exit."""
    server = LiveServer.start(project, env, log_path, target=target)
    try:
        yield server
    finally:
        server.close()


@dataclass
class RequestStream:
    """GET `path` again and again from `clients` threads, each request on a new connection (so a dead
    or retiring worker can only fail the requests it was serving at that moment), until stopped or
    `max_seconds` passed. Counts answers with the expected status as successes, anything else
    (other statuses, refused or reset connections, time-outs) as failures."""

    port: int
    path: str = "/"
    clients: int = 2
    expect: int = 200
    timeout: float = 5.0
    max_seconds: float = 60.0
    succeeded: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    failure_starts: list[float] = field(default_factory=list)  # time.monotonic() each failed request began
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.succeeded + self.failed

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.total if self.total else 0.0

    def summary(self) -> str:
        return f"{self.succeeded}/{self.total} ok ({self.success_rate:.2%}), {self.failed} failed"

    def failed_before(self, moment: float) -> int:
        """Failed requests that had begun before `moment` (a time.monotonic() value)."""
        with self._lock:
            return sum(1 for began in self.failure_starts if began < moment)

    interval: float = 0.0  # seconds each client waits between its requests

    def request(self) -> int:
        """One request of the stream: its status (a subclass may send it another way)."""
        return get(self.port, self.path, timeout=self.timeout)[0]

    def _run(self, deadline: float) -> None:
        while not self._stop.is_set() and time.monotonic() < deadline:
            began = time.monotonic()
            try:
                status = self.request()
                problem = None if status == self.expect else f"status {status}"
            except (OSError, http.client.HTTPException) as error:
                problem = f"{type(error).__name__}: {error}"
            with self._lock:
                if problem is None:
                    self.succeeded += 1
                else:
                    self.failed += 1
                    self.failure_starts.append(began)
                    if len(self.failures) < 20:
                        self.failures.append(problem)
            if self.interval:
                self._stop.wait(self.interval)

    def start(self) -> RequestStream:
        deadline = time.monotonic() + self.max_seconds
        self._threads = [threading.Thread(target=self._run, args=(deadline,), daemon=True) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def wait_for(self, requests: int, timeout: float = 30.0) -> None:
        """Wait until at least `requests` more have been answered (either way)."""
        target = self.total + requests
        wait_until(lambda: self.total >= target, timeout, f"{requests} more requests in the stream")

    def stop(self) -> RequestStream:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)
        return self

    def __enter__(self) -> RequestStream:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --- the test-only slow route --------------------------------------------------------------------

# Added to a test's own baked copy only: the shipped app has no slow route. It logs when a request
# starts, so a test knows the request is in flight before it stops the server.
SLOW_ROUTER = '''"""Test-only route (added by the template's live tests): answers after a delay."""

import asyncio
import logging

from fastapi import APIRouter

router = APIRouter()
logger = logging.getLogger(__name__)


@router.get("/slow")
async def slow(seconds: float = 2.0) -> dict[str, float]:
    logger.info("slow request started")
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("boom: an unhandled error for the live tests")
'''
SLOW_REQUEST_STARTED = "slow request started"


def start_slow_request(
    get: Callable[..., tuple[int, bytes]], log: Callable[[], str], seconds: float
) -> tuple[threading.Thread, dict[str, object]]:
    """GET /slow in a thread, once the app has logged that it started serving it: the thread and the
    dict its answer lands in ("status" and "body", or "error")."""
    answer: dict[str, object] = {}

    def slow_request() -> None:
        try:
            answer["status"], answer["body"] = get(f"/slow?seconds={seconds}", timeout=60)
        except (OSError, http.client.HTTPException) as error:
            answer["error"] = f"{type(error).__name__}: {error}"

    in_flight = threading.Thread(target=slow_request)
    in_flight.start()
    # Generous: on a loaded machine a worker just started (after a kill or a reload) may take seconds.
    wait_until(lambda: SLOW_REQUEST_STARTED in log(), 45, "the slow request to reach the app")
    return in_flight, answer


# What a new client may meet while a server drains, none of which is being served.
TURNED_AWAY = frozenset({"refused", "closed without answer", "readyz 503"})
# A supervisor that keeps its listening socket open while its workers drain and no longer accept
# (Uvicorn with workers) leaves a new connection queued, unanswered, until it exits.
UNANSWERED = "unanswered"


def answer_while_draining(get: Callable[..., tuple[int, bytes]], in_flight: threading.Thread) -> str:
    """What a new client meets while the in-flight request runs: "refused"; "closed without answer"
    (a connection still in the backlog of the listener being closed, or Docker's userland proxy in
    front of a closed listener); "readyz 503"; "unanswered" (no answer within a second); another
    error; or "served" when /readyz kept answering 200 until that request ended."""
    while in_flight.is_alive():
        try:
            status, _ = get("/readyz", timeout=1.0)
        except ConnectionRefusedError:
            return "refused"
        except (ConnectionResetError, http.client.RemoteDisconnected):
            return "closed without answer"
        except TimeoutError:
            return UNANSWERED
        except (OSError, http.client.HTTPException) as error:
            return f"{type(error).__name__}: {error}"
        if status == 503:
            return "readyz 503"
        time.sleep(0.02)
    return "served"


def package_name(project: Path) -> str:
    """The import name of a baked project's package (the one folder under src/)."""
    (package,) = (path.name for path in (project / "src").iterdir() if path.is_dir())
    return package


def add_router(project: Path, module: str, source: str) -> None:
    """Add routers/<module>.py with `source` to a baked project, included by main.py as FastAPI's guide does."""
    package = package_name(project)
    (project / "src" / package / "routers" / f"{module}.py").write_text(source)
    main = project / "src" / package / "main.py"
    text = main.read_text()
    edits = {
        f"from {package}.routers import health, root\n": f"from {package}.routers import health, root, {module}\n",
        "    app.include_router(health.router)\n": (
            f"    app.include_router(health.router)\n    app.include_router({module}.router)\n"
        ),
    }
    for old, new in edits.items():
        assert text.count(old) == 1, f"main.py changed: cannot add routers/{module}.py at {old.strip()!r}"
        text = text.replace(old, new)
    main.write_text(text)


def add_slow_route(project: Path) -> None:
    """Give a baked project GET /slow?seconds=S (routers/slow.py, included by main.py)."""
    add_router(project, "slow", SLOW_ROUTER)


# --- wrk ------------------------------------------------------------------------------------------

# The load tiers skip with this line where wrk is missing (.ci/run installs it, so CI runs them).
WRK_MISSING = "wrk is not installed: sudo apt-get install wrk (Debian, Ubuntu) or brew install wrk (macOS)"


def wrk_installed() -> bool:
    return shutil.which("wrk") is not None


def require_wrk() -> None:
    """Skip the calling test (or fixture) with one line where wrk is not installed."""
    if not wrk_installed():
        pytest.skip(WRK_MISSING)


WRK_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
WRK_REQUESTS = re.compile(r"(\d+) requests in ([\d.]+)(m?s)")
WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
WRK_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
# --latency's distribution: "     99%   12.34ms" (wrk's units: us, ms, s).
WRK_PERCENTILE = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
MS_PER_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk_command(url: str, *, seconds: float, connections: int, threads: int, timeout: float = 5.0) -> list[str]:
    """wrk loading `url` (loopback only) over keep-alive for whole `seconds`, with the latency
    distribution in its report."""
    assert url.startswith(f"http://{LOOPBACK}:"), f"load tests target {LOOPBACK} only, not {url}"
    return [
        "wrk",
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(seconds))}s",
        f"--timeout={max(1, round(timeout))}s",
        "--latency",
        url,
    ]


@dataclass
class WrkResult:
    requests: int
    seconds: float
    connect_errors: int = 0
    read_errors: int = 0
    write_errors: int = 0
    timeouts: int = 0
    non_2xx: int = 0
    requests_per_second: float = 0.0
    latency_ms: dict[int, float] = field(default_factory=dict)  # percentile (50, 75, 90, 99) -> ms
    output: str = ""

    @property
    def failed(self) -> int:
        """Requests that got no good answer: errors on open connections, time-outs, bad statuses.
        (Refused connects are counted apart: no request was sent on them.)"""
        return self.read_errors + self.write_errors + self.timeouts + self.non_2xx

    @property
    def socket_errors(self) -> int:
        return self.connect_errors + self.read_errors + self.write_errors + self.timeouts

    def summary(self) -> str:
        return (
            f"{self.requests} requests in {self.seconds:.1f} s, {self.failed} failed "
            f"(read {self.read_errors}, write {self.write_errors}, timeout {self.timeouts}, "
            f"non-2xx {self.non_2xx}; refused connects {self.connect_errors})"
        )

    @classmethod
    def parse(cls, output: str) -> WrkResult:
        requests = WRK_REQUESTS.search(output)
        assert requests, f"no request count in wrk's output:\n{output}"
        seconds = float(requests[2]) / (1000 if requests[3] == "ms" else 1)
        result = cls(requests=int(requests[1]), seconds=seconds, output=output)
        if errors := WRK_SOCKET_ERRORS.search(output):
            result.connect_errors, result.read_errors, result.write_errors, result.timeouts = map(int, errors.groups())
        if non_2xx := WRK_NON_2XX.search(output):
            result.non_2xx = int(non_2xx[1])
        rate = WRK_RATE.search(output)
        result.requests_per_second = float(rate[1]) if rate else result.requests / max(seconds, 1e-9)
        for percentile, value, unit in WRK_PERCENTILE.findall(output):
            result.latency_ms[int(percentile)] = float(value) * MS_PER_UNIT[unit]
        return result


def wrk_under_fault(
    url: str,
    fault: Callable[[], None],
    *,
    seconds: int = 10,
    fault_after: float = 3.0,
    connections: int = 8,
    threads: int = 2,
) -> WrkResult:
    """Load `url` (loopback only) with wrk for `seconds`, calling `fault()` `fault_after` seconds in.
    Skips the calling test where wrk is not installed."""
    require_wrk()
    wrk = subprocess.Popen(
        wrk_command(url, seconds=seconds, connections=connections, threads=threads),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # The fault is scheduled inside a load of known length: a timed point, not a readiness guess.
        time.sleep(fault_after)
        fault()
        output, _ = wrk.communicate(timeout=seconds + 30)
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    assert wrk.returncode == 0, f"wrk failed ({wrk.returncode}):\n{output}"
    return WrkResult.parse(output)
