"""Every runner started for real, with the baked project's own `make run` on 127.0.0.1: it gets ready,
serves, drains in-flight requests on SIGTERM and exits 0, refuses a bad setting at once, and (with
workers) survives a killed worker and a reload without failing requests.

Each scenario runs once per runner in a module fixture and returns what it saw; the tests below it
assert one fact each. Figures (time to ready, time to stop, success rates) are printed as
"figure: ..." lines: run with -rA to see them.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import RUNNERS, project_env
from tests.support.live_server import (
    TURNED_AWAY,
    WRK_MISSING,
    LiveServer,
    RequestStream,
    WrkResult,
    add_slow_route,
    answer_while_draining,
    connections_per_worker,
    figure,
    live_server,
    needs_migrated_requests,
    package_name,
    start_slow_request,
    wait_until,
    wrk_installed,
    wrk_under_fault,
)

# One xdist worker runs the whole module under `--dist loadgroup`: its servers and load runs then
# neither run twice nor compete with each other for the two cores.
pytestmark = [pytest.mark.live, pytest.mark.xdist_group("live")]

# The template's default <PKG>_GRACEFUL_TIMEOUT (settings.py); the tests leave it unset.
GRACEFUL_TIMEOUT = 20.0
SLOW_SECONDS = 2.0
# Requests in a stream before and after a fault: with 300 + 300, one failure is 0.17 %.
STREAM_REQUESTS = 300
TARGET_SUCCESS_RATE = 0.995
WRK_CONNECTIONS = 8
# Keep-alive connections opened at once to see how the workers share them.
SPREAD_CONNECTIONS = 64
# What each runner logs on SIGHUP (Gunicorn: reload; one Uvicorn process: nothing to reload).
SIGHUP_HANDLED = ("Handling signal: hup", "SIGHUP ignored")


Installer = Callable[..., Path]


# --- ready and serving ---------------------------------------------------------------------------


@pytest.fixture(scope="module", params=RUNNERS)
def serving(
    request: pytest.FixtureRequest, installed_project: Installer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The shipped app of each runner, started with `make run` and ready."""
    runner: str = request.param
    project = installed_project(runner)
    log = tmp_path_factory.mktemp(f"serve-{runner}") / "server.log"
    with live_server(project, project_env(), log) as server:
        figure(f"{runner} make run: time to ready", f"{server.wait_ready():.2f} s")
        yield server


def test_readyz_answers_200_once_started(serving: LiveServer) -> None:
    status, body = serving.get("/readyz")

    assert (status, json.loads(body)) == (200, {"status": "ready"})


def test_root_says_hello_world(serving: LiveServer) -> None:
    status, body = serving.get("/")

    assert (status, json.loads(body)) == (200, {"message": "Hello, World!"})


def test_livez_answers_200(serving: LiveServer) -> None:
    status, body = serving.get("/livez")

    assert (status, json.loads(body)) == (200, {"status": "alive"})


def test_sighup_leaves_the_server_serving(serving: LiveServer) -> None:
    # `systemctl reload` sends SIGHUP: Gunicorn reloads its workers, a single Uvicorn process logs
    # that it cannot reload and keeps serving (unhandled, the signal would kill it).
    server = serving.server_pid()
    serving.signal_server(signal.SIGHUP)
    wait_until(lambda: any(m in serving.log() for m in SIGHUP_HANDLED), 10, "the server to handle SIGHUP")
    serving.wait_ready(timeout=60)

    assert (serving.make.poll(), serving.server_pid()) == (None, server)


# --- an unhandled error -----------------------------------------------------------------------------


@dataclass
class ErrorOutcome:
    status: int
    headers: dict[str, str]
    log: str


@pytest.fixture(scope="module", params=RUNNERS)
def unhandled_error(
    request: pytest.FixtureRequest, installed_project: Installer, tmp_path_factory: pytest.TempPathFactory
) -> ErrorOutcome:
    """GET /boom (the test's copy has a route that raises), with the client's request id."""
    runner: str = request.param
    project = installed_project(runner, variant="slow-route", customize=add_slow_route)
    log = tmp_path_factory.mktemp(f"error-{runner}") / "server.log"
    with live_server(project, project_env(), log) as server:
        server.wait_ready()
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("GET", "/boom", headers={"X-Request-ID": "live-boom-1"})
        response = connection.getresponse()
        response.read()
        connection.close()
        wait_until(lambda: "live-boom-1" in server.log(), 10, "the error to be logged")
        return ErrorOutcome(
            response.status, {name.lower(): value for name, value in response.getheaders()}, server.log()
        )


def test_unhandled_error_is_a_500(unhandled_error: ErrorOutcome) -> None:
    assert unhandled_error.status == 500


def test_the_500_carries_the_request_id(unhandled_error: ErrorOutcome) -> None:
    assert unhandled_error.headers.get("x-request-id") == "live-boom-1"


def test_the_500_carries_the_security_headers(unhandled_error: ErrorOutcome) -> None:
    assert unhandled_error.headers.get("x-content-type-options") == "nosniff"


def test_the_traceback_is_logged_under_the_request_id(unhandled_error: ErrorOutcome) -> None:
    error_line = next(line for line in unhandled_error.log.splitlines() if "Unhandled error in GET /boom" in line)

    assert "[live-boom-1]" in error_line


def test_the_error_is_logged_once(unhandled_error: ErrorOutcome) -> None:
    assert unhandled_error.log.count("RuntimeError: boom") == 1


# --- graceful stop -------------------------------------------------------------------------------


@dataclass
class StopOutcome:
    slow_status: int | None
    slow_body: object
    slow_error: str | None
    drain_answer: str
    exit_code: int
    stop_seconds: float
    log: str


@pytest.fixture(scope="module", params=RUNNERS)
def graceful_stop(
    request: pytest.FixtureRequest, installed_project: Installer, tmp_path_factory: pytest.TempPathFactory
) -> StopOutcome:
    """SIGTERM to the server while a 2-second request is in flight (the test's copy has /slow)."""
    runner: str = request.param
    project = installed_project(runner, variant="slow-route", customize=add_slow_route)
    log = tmp_path_factory.mktemp(f"stop-{runner}") / "server.log"
    with live_server(project, project_env(), log) as server:
        server.wait_ready()
        in_flight, answer = start_slow_request(server.get, server.log, SLOW_SECONDS)
        stop_sent = time.monotonic()
        server.signal_server(signal.SIGTERM)
        drain_answer = answer_while_draining(server.get, in_flight)
        in_flight.join(timeout=30)
        exit_code = server.wait_exit(timeout=GRACEFUL_TIMEOUT + 10)
        stop_seconds = time.monotonic() - stop_sent
    figure(f"{runner} make run: time to stop with a {SLOW_SECONDS:.0f} s request in flight", f"{stop_seconds:.2f} s")
    body = answer.get("body")
    return StopOutcome(
        slow_status=answer.get("status"),  # type: ignore[arg-type]
        slow_body=json.loads(body) if isinstance(body, bytes) else None,
        slow_error=answer.get("error"),  # type: ignore[arg-type]
        drain_answer=drain_answer,
        exit_code=exit_code,
        stop_seconds=stop_seconds,
        log=server.log(),
    )


def test_in_flight_request_completes_during_graceful_stop(graceful_stop: StopOutcome) -> None:
    assert (graceful_stop.slow_status, graceful_stop.slow_body, graceful_stop.slow_error) == (
        200,
        {"slept": SLOW_SECONDS},
        None,
    )


def test_new_connections_are_turned_away_while_draining(graceful_stop: StopOutcome) -> None:
    assert graceful_stop.drain_answer in TURNED_AWAY


def test_lifespan_shutdown_is_logged(graceful_stop: StopOutcome) -> None:
    assert "lifespan shutdown" in graceful_stop.log


def test_graceful_stop_exits_0(graceful_stop: StopOutcome) -> None:
    assert graceful_stop.exit_code == 0, graceful_stop.log[-2000:]


def test_graceful_stop_ends_well_inside_the_graceful_timeout(graceful_stop: StopOutcome) -> None:
    assert graceful_stop.stop_seconds < GRACEFUL_TIMEOUT / 2


def test_graceful_stop_logs_no_error(graceful_stop: StopOutcome) -> None:
    # e.g. Gunicorn's "Error while closing socket [Errno 9] Bad file descriptor", or a traceback.
    problems = [line for line in graceful_stop.log.splitlines() if any(w in line for w in ("ERROR", "Error", "Errno"))]

    assert problems == []


# --- startup failure -----------------------------------------------------------------------------


@dataclass
class FailedStart:
    setting: str
    server_exit_code: int | None
    seconds: float
    log: str

    def error_lines(self) -> list[str]:
        return [line for line in self.log.splitlines() if line.startswith("error:")]


def run_until_it_exits(project: Path, env: dict[str, str], log: Path) -> tuple[LiveServer, float]:
    """`make run` left to end by itself (a failed start): the server, and seconds until it ended."""
    server = LiveServer.start(project, env, log)
    try:
        server.wait_exit(timeout=90)
        return server, time.monotonic() - server.started
    finally:
        server.close()


@pytest.fixture(scope="module", params=RUNNERS)
def invalid_setting(
    request: pytest.FixtureRequest, installed_project: Installer, tmp_path_factory: pytest.TempPathFactory
) -> FailedStart:
    """`make run` with one invalid setting, and two workers asked for (a supervisor that restarted
    failing workers would show here)."""
    runner: str = request.param
    project = installed_project(runner)
    setting = f"{package_name(project).upper()}_LOG_LEVEL"
    log = tmp_path_factory.mktemp(f"bad-setting-{runner}") / "server.log"
    server, seconds = run_until_it_exits(project, project_env(**{setting: "loud", "WEB_CONCURRENCY": "2"}), log)
    figure(f"{runner} make run: exit on an invalid setting after", f"{seconds:.2f} s")
    return FailedStart(setting=setting, server_exit_code=server.server_exit_code(), seconds=seconds, log=server.log())


def test_invalid_setting_exits_with_code_2(invalid_setting: FailedStart) -> None:
    # 2 = a bad setting (README, systemd's RestartPreventExitStatus); make reports it as "Error 2".
    assert invalid_setting.server_exit_code == 2, invalid_setting.log


def test_invalid_setting_fails_promptly(invalid_setting: FailedStart) -> None:
    assert invalid_setting.seconds < 10


def test_invalid_setting_is_named_on_one_line(invalid_setting: FailedStart) -> None:
    assert [invalid_setting.setting in line for line in invalid_setting.error_lines()] == [True]


def test_invalid_setting_starts_no_worker(invalid_setting: FailedStart) -> None:
    assert not any(mark in invalid_setting.log for mark in ("Booting worker", "Started server process"))


FAIL_ON_IMPORT = """

# Added by the template's test_live.py: the app fails to import when FAIL_APP_IMPORT names a file,
# after noting the attempt there.
import os

if os.environ.get("FAIL_APP_IMPORT"):
    with open(os.environ["FAIL_APP_IMPORT"], "a") as attempts:
        attempts.write("attempt\\n")
    raise RuntimeError("the app failed to import, on purpose")
"""


def add_import_failure(project: Path) -> None:
    main = project / "src" / package_name(project) / "main.py"
    main.write_text(main.read_text() + FAIL_ON_IMPORT)


@dataclass
class BrokenApp:
    server_exit_code: int | None
    seconds: float
    import_attempts: int
    log: str


@pytest.fixture(scope="module", params=RUNNERS)
def broken_app(
    request: pytest.FixtureRequest, installed_project: Installer, tmp_path_factory: pytest.TempPathFactory
) -> BrokenApp:
    """`make run` with two workers, of an app whose import fails (a bug shipped, a dependency missing)."""
    runner: str = request.param
    project = installed_project(runner, variant="import-failure", customize=add_import_failure)
    folder = tmp_path_factory.mktemp(f"broken-app-{runner}")
    attempts = folder / "attempts"
    env = project_env(FAIL_APP_IMPORT=str(attempts), WEB_CONCURRENCY="2")
    server, seconds = run_until_it_exits(project, env, folder / "server.log")
    figure(f"{runner} make run: exit when the app fails to import, after", f"{seconds:.2f} s")
    tries = len(attempts.read_text().splitlines()) if attempts.exists() else 0
    return BrokenApp(server.server_exit_code(), seconds, tries, server.log())


def test_app_that_fails_to_import_exits_non_zero(broken_app: BrokenApp) -> None:
    # Not 0: systemd's Restart=on-failure and orchestrators must see a failure.
    assert broken_app.server_exit_code not in (0, None), broken_app.log[-2000:]


def test_app_that_fails_to_import_is_not_restarted_forever(broken_app: BrokenApp) -> None:
    # Each of the two workers may try once; a supervisor restarting them would try again and again.
    assert 1 <= broken_app.import_attempts <= 2, broken_app.log[-2000:]


def test_app_that_fails_to_import_fails_promptly(broken_app: BrokenApp) -> None:
    assert broken_app.seconds < 30


def test_app_that_fails_to_import_logs_why(broken_app: BrokenApp) -> None:
    assert "the app failed to import, on purpose" in broken_app.log


# --- supervision: a killed worker, a reload --------------------------------------------------------


@dataclass
class WorkerFault:
    """A fault injected into a server with two workers while a request stream ran."""

    before: set[int]
    after: set[int]
    settled_seconds: float
    stream: RequestStream
    gone: set[int] = field(default_factory=set)


def kill_a_worker(server: LiveServer, timeout: float = 5.0) -> WorkerFault:
    before = server.wait_for_workers(2)
    victim = min(before)
    with RequestStream(server.port, timeout=timeout) as stream:
        stream.wait_for(STREAM_REQUESTS)
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        # Typically 2-4 s; the slack is for a machine whose other xdist worker is building images.
        after = server.wait_for_workers(2, without={victim}, timeout=90)
        settled = time.monotonic() - killed
        stream.wait_for(STREAM_REQUESTS)
    return WorkerFault(before=before, after=after, settled_seconds=settled, stream=stream, gone={victim})


def reload_workers(server: LiveServer, timeout: float = 15.0) -> WorkerFault:
    before = server.wait_for_workers(2)
    # A reload may hold new connections in the listen queue while new workers boot: a longer
    # client timeout than usual, so a wait is not counted as a failure.
    with RequestStream(server.port, timeout=timeout) as stream:
        stream.wait_for(STREAM_REQUESTS)
        sent = time.monotonic()
        server.signal_server(signal.SIGHUP)
        after = server.wait_for_workers(2, without=before, timeout=60)
        settled = time.monotonic() - sent
        stream.wait_for(STREAM_REQUESTS)
    return WorkerFault(before=before, after=after, settled_seconds=settled, stream=stream, gone=before)


def report(name: str, fault: WorkerFault) -> None:
    figure(f"{name}: stream", fault.stream.summary())
    figure(f"{name}: workers back to 2 after", f"{fault.settled_seconds:.2f} s")
    if fault.stream.failures:
        figure(f"{name}: first failures", "; ".join(fault.stream.failures[:5]))


# How a worker's end shows in the log: killed (Gunicorn), recycled after max_requests, retired.
WORKER_ENDED = re.compile(
    r"Worker \(pid:(\d+)\) was sent SIG|Worker exiting \(pid: (\d+)\)|Child process \[(\d+)\] died"
)


@dataclass
class LoadFault:
    """wrk's figures for one fault, and how many workers ended while it ran (the fault's, plus any
    recycled by max_requests meanwhile)."""

    wrk: WrkResult
    workers_ended: int


def fault_under_wrk(server: LiveServer, name: str, fault: Callable[[], None]) -> LoadFault:
    log_before = len(server.log())
    result = wrk_under_fault(f"http://127.0.0.1:{server.port}/", fault, connections=WRK_CONNECTIONS)
    server.wait_for_workers(2)
    ended = {pid for match in WORKER_ENDED.finditer(server.log()[log_before:]) for pid in match.groups() if pid}
    figure(name, f"{result.summary()}; {len(ended)} workers ended meanwhile")
    return LoadFault(result, len(ended))


@dataclass
class Supervision:
    runner: str
    kill: WorkerFault
    reload: WorkerFault
    exit_code: int
    log: str
    connections_per_worker: list[int]
    wrk_kill: LoadFault | None = None
    wrk_reload: LoadFault | None = None


def supervise(server: LiveServer, runner: str, *, with_wrk: bool) -> Supervision:
    server.wait_ready()
    server.wait_for_workers(2)
    spread = connections_per_worker(server, SPREAD_CONNECTIONS)
    figure(f"{runner} WEB_CONCURRENCY=2: {SPREAD_CONNECTIONS} new keep-alive connections per worker", str(spread))
    kill = kill_a_worker(server)
    report(f"{runner} WEB_CONCURRENCY=2 kill -9 one worker", kill)
    reload = reload_workers(server)
    report(f"{runner} WEB_CONCURRENCY=2 SIGHUP reload", reload)
    wrk_kill = wrk_reload = None
    if with_wrk:
        victim = min(server.wait_for_workers(2))
        wrk_kill = fault_under_wrk(
            server,
            f"{runner} wrk -c{WRK_CONNECTIONS} 10 s, kill -9 one worker at 3 s",
            lambda: os.kill(victim, signal.SIGKILL),
        )
        wrk_reload = fault_under_wrk(
            server, f"{runner} wrk -c{WRK_CONNECTIONS} 10 s, SIGHUP at 3 s", lambda: server.signal_server(signal.SIGHUP)
        )
    server.signal_server(signal.SIGTERM)
    exit_code = server.wait_exit(timeout=GRACEFUL_TIMEOUT + 10)
    return Supervision(runner, kill, reload, exit_code, server.log(), spread, wrk_kill, wrk_reload)


@pytest.fixture(scope="module")
def gunicorn_supervision(installed_project: Installer, tmp_path_factory: pytest.TempPathFactory) -> Supervision:
    project = installed_project("gunicorn")
    log = tmp_path_factory.mktemp("supervise-gunicorn") / "server.log"
    with live_server(project, project_env(WEB_CONCURRENCY="2"), log) as server:
        return supervise(server, "gunicorn", with_wrk=wrk_installed())


@pytest.fixture(scope="module")
def uvicorn_supervision(installed_project: Installer, tmp_path_factory: pytest.TempPathFactory) -> Supervision:
    project = installed_project("uvicorn")
    log = tmp_path_factory.mktemp("supervise-uvicorn") / "server.log"
    with live_server(project, project_env(WEB_CONCURRENCY="2"), log) as server:
        return supervise(server, "uvicorn", with_wrk=False)


@pytest.fixture(params=["gunicorn", "uvicorn"])
def supervision(request: pytest.FixtureRequest) -> Supervision:
    return request.getfixturevalue(f"{request.param}_supervision")  # type: ignore[no-any-return]


def test_killed_worker_is_replaced(supervision: Supervision) -> None:
    assert supervision.kill.after - supervision.kill.before, "no new worker"


def test_killed_worker_costs_at_most_half_a_percent_of_requests(supervision: Supervision) -> None:
    assert supervision.kill.stream.success_rate >= TARGET_SUCCESS_RATE, supervision.kill.stream.failures


def test_reload_replaces_every_worker(supervision: Supervision) -> None:
    assert supervision.reload.after.isdisjoint(supervision.reload.before)


def test_reload_fails_no_request(supervision: Supervision) -> None:
    # A retiring worker serves what is queued on its socket and answers what reaches it while it drains
    # (serving/protocol.py), rather than resetting those connections (upstream Kludex/uvicorn#2757).
    needs_migrated_requests(supervision.runner)
    assert supervision.reload.stream.failed == 0, supervision.reload.stream.failures


def test_supervisor_exits_0_after_faults(supervision: Supervision) -> None:
    assert supervision.exit_code == 0, supervision.log[-2000:]


def test_workers_log_no_socket_error(supervision: Supervision) -> None:
    # Gunicorn's "Error while closing socket [Errno 9] Bad file descriptor": with reuse_port every
    # retiring worker logged it until gunicorn_worker.py handed Uvicorn plain sockets in run().
    assert [line for line in supervision.log.splitlines() if "Errno" in line] == []


def test_gunicorn_workers_share_new_connections(gunicorn_supervision: Supervision) -> None:
    # Each worker listens on its own SO_REUSEPORT socket (serving/gunicorn_conf.py): the kernel spreads
    # connections by their addresses. A quarter of 64 is 4 standard deviations below half. (On one
    # shared socket, the worker that wakes first often takes all 64 on a 2-core machine.)
    assert gunicorn_supervision.connections_per_worker[0] >= SPREAD_CONNECTIONS // 4


# --- faults under load (wrk) ---------------------------------------------------------------------


def wrk_fault(supervision: Supervision, name: str) -> LoadFault:
    """The wrk run of one fault; skips the test where wrk is not installed (none was run)."""
    fault: LoadFault | None = getattr(supervision, f"wrk_{name}")
    if fault is None:
        pytest.skip(WRK_MISSING)
    return fault


@pytest.fixture(params=["kill", "reload"])
def load_fault(request: pytest.FixtureRequest, gunicorn_supervision: Supervision) -> LoadFault:
    return wrk_fault(gunicorn_supervision, request.param)


def test_wrk_meets_no_error_status_time_out_or_refusal(load_fault: LoadFault) -> None:
    wrk = load_fault.wrk

    assert (wrk.non_2xx, wrk.timeouts, wrk.connect_errors) == (0, 0, 0), wrk.output


def test_wrk_loses_requests_only_on_connections_of_a_killed_worker(gunicorn_supervision: Supervision) -> None:
    # A killed worker cannot drain: at most the one request in flight on each of its connections.
    fault = wrk_fault(gunicorn_supervision, "kill")

    assert fault.wrk.failed <= WRK_CONNECTIONS * fault.workers_ended, fault.wrk.output


def test_wrk_loses_no_request_to_a_reload(gunicorn_supervision: Supervision) -> None:
    # Retiring workers (the reload's, and any recycled after max_requests meanwhile) drain: each
    # keep-alive connection gets its next answer with Connection: close, and wrk reconnects.
    needs_migrated_requests("gunicorn")
    fault = wrk_fault(gunicorn_supervision, "reload")

    assert fault.wrk.failed == 0, fault.wrk.output
