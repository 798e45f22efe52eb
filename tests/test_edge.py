"""The edge: the baked `deploy/nginx/<slug>.conf` in Debian's nginx, in front of the live service (`make run`).

What the shipped site does, proven through it for each server (packaging=host): `nginx -t` accepts it
(both packagings' renderings), and its limits match the service's defaults; HTTPS with the certificate,
HTTP redirected to HTTPS, HSTS; the service believes X-Forwarded-For only from the edge, and says https
behind it; one request's edge and service log lines share its X-Request-ID; the per-client request
rate is limited; a reload of the server (SIGHUP, what `systemctl reload` sends) under wrk load costs
no request through the edge, where served directly it does (printed as figures, with -rA).

The harness (tests/support/edge.py) changes only the site's ports, upstream address, certificate and log
folder. The docker rendering's upstream `app` resolves only inside compose: its `nginx -t` here runs with
that address changed like the host's (the docker tests run the site inside compose).
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import HOST_PYTHON, PACKAGINGS, SERVERS, bake_project, project_env
from tests.support.edge import (
    Edge,
    check_config,
    edge,
    https_wrk_command,
    missing_tool,
    prepared_site,
    self_signed_certificate,
    site_file,
    write_config,
)
from tests.support.live_server import (
    LOOPBACK,
    WRK_MISSING,
    LiveServer,
    WrkResult,
    figure,
    live_server,
    wait_until,
    wrk_command,
    wrk_installed,
)

pytestmark = [pytest.mark.edge, pytest.mark.skipif(bool(missing_tool()), reason=missing_tool() or "-")]

Installer = Callable[..., Path]

# Another loopback address (Linux routes all of 127.0.0.0/8 to lo): a client the service does not trust
# as a proxy, and the site does not exempt from its per-client limits.
OTHER_CLIENT = "127.0.0.2"
FORGED = "203.0.113.7"  # TEST-NET-3: an address no test client has
# Reload under load (as the field notes measured): wrk -t1 -c32 for 10 s, SIGHUP 3 s in, 3 runs.
RELOAD_RUNS = int(os.environ.get("RELOAD_RUNS", "3"))
RELOAD_SECONDS = 10
RELOAD_AFTER = 3.0
RELOAD_CONNECTIONS = 32
RELOAD_WORKERS = 2


# --- nginx -t -----------------------------------------------------------------------------------


# The longest package name the hook accepts (64): nginx's variables named after it must still fit.
LONGEST_NAME = {"project_slug": "a" * 64}


@pytest.mark.xdist_group("edge")
@pytest.mark.parametrize(
    ("packaging", "answers"),
    [pytest.param(packaging, {}, id=packaging) for packaging in PACKAGINGS]
    + [pytest.param(PACKAGINGS[0], LONGEST_NAME, id=f"{PACKAGINGS[0]}-longest-name")],
)
def test_site_passes_nginx_t(packaging: str, answers: dict[str, str], tmp_path: Path) -> None:
    project = bake_project(tmp_path / "bake", python_version=HOST_PYTHON, packaging=packaging, **answers)
    shipped = site_file(project).read_text()
    upstream = "app" if packaging == "docker" else LOOPBACK
    assert f"    server {upstream}:8000 max_fails=0;" in shipped
    folder = tmp_path / "nginx"
    folder.mkdir()
    site, _, _ = prepared_site(project, folder, service_port=8000, certificate=self_signed_certificate(folder))

    checked = check_config(write_config(site, folder))

    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


@pytest.mark.xdist_group("edge")
def test_site_limits_match_the_service_defaults(tmp_path: Path) -> None:
    # The edge refuses what the service would refuse, no less; and it closes idle upstream connections
    # before the service does (else nginx may send a request on one the service is closing).
    project = bake_project(tmp_path, python_version=HOST_PYTHON)
    site = site_file(project).read_text()
    prefix = project.name.replace("-", "_").upper()
    defaults = dict(
        re.findall(
            rf"^{prefix}_(MAX_BODY_BYTES|KEEP_ALIVE_TIMEOUT)=(\d+)$",
            (project / ".env.example").read_text(),
            re.M,
        )
    )
    body = re.search(r"^\s*client_max_body_size (\d+)m;", site, re.M)
    upstream_idle = re.search(r"^\s*keepalive_timeout (\d+)s;\n}", site, re.M)
    assert body, "no client_max_body_size <N>m"
    assert upstream_idle, "no keepalive_timeout <N>s at the end of the upstream block"

    assert int(body[1]) * 1024 * 1024 == int(defaults["MAX_BODY_BYTES"])
    assert int(upstream_idle[1]) < int(defaults["KEEP_ALIVE_TIMEOUT"])


# --- the service behind the edge ------------------------------------------------------------------


@dataclass
class Fronted:
    server: str
    service: LiveServer
    edge: Edge

    def service_access_line(self, request_id: str) -> str:
        """The service's access line for the request with this id (its text log: `[<id>] <client> "GET ...`)."""
        found: list[str] = []

        def logged() -> bool:
            found[:] = [line for line in self.service.log().splitlines() if f".access] [{request_id}] " in line]
            return bool(found)

        wait_until(logged, 10, f"the service's access line for {request_id}")
        assert len(found) == 1, found
        return found[0]

    def service_client(self, request_id: str) -> str:
        """The client address the service believed, from its access line."""
        return self.service_access_line(request_id).split(f"[{request_id}] ", 1)[1].split(" ", 1)[0]

    def edge_access_line(self, marker: str) -> str:
        """The edge's access line holding `marker` (nginx writes it once the answer is sent: poll)."""
        found: list[str] = []

        def logged() -> bool:
            found[:] = [line for line in self.edge.access_lines() if marker in line]
            return bool(found)

        wait_until(logged, 10, f"the edge's access line with {marker}")
        assert len(found) == 1, found
        return found[0]


@pytest.fixture(scope="module", params=SERVERS)
def fronted(
    request: pytest.FixtureRequest, installed_project: Installer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fronted]:
    """Each server's shipped service (`make run`, default settings) with the edge in front."""
    server: str = request.param
    project = installed_project(server, "host")
    folder = tmp_path_factory.mktemp(f"edge-{server}")
    with live_server(project, project_env(), folder / "service.log") as service:
        service.wait_ready()
        with edge(project, service.port, folder / "nginx") as front:
            yield Fronted(server, service, front)


def new_id() -> str:
    return f"edge-test-{uuid.uuid4().hex}"


@pytest.mark.live
@pytest.mark.xdist_group("edge")
def test_https_answers_with_the_certificate_and_hsts(fronted: Fronted) -> None:
    # The client trusts only the test's self-signed certificate: the handshake succeeds only if nginx serves it.
    status, headers, body = fronted.edge.request("/")

    assert (status, body) == (200, b'{"message":"Hello, World!"}')
    assert re.fullmatch(r"max-age=\d{7,}(; ?includeSubDomains)?", headers["Strict-Transport-Security"])


@pytest.mark.live
@pytest.mark.xdist_group("edge")
def test_http_redirects_to_https_but_acme_challenges(fronted: Fronted) -> None:
    status, headers, _ = fronted.edge.request("/livez?check=1", https=False)
    challenge_status, _, _ = fronted.edge.request("/.well-known/acme-challenge/no-such-token", https=False)

    assert status in {301, 308}
    assert headers["Location"] == f"https://{LOOPBACK}/livez?check=1"
    assert challenge_status == 404  # served from certbot's webroot (where no such token is), not redirected


def direct_request(
    port: int, path: str, *, headers: dict[str, str] | None = None, source: str | None = None
) -> tuple[int, http.client.HTTPMessage]:
    """One GET straight to the service (from the loopback address `source`, if given): status, headers."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10, source_address=(source, 0) if source else None)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response.status, response.headers
    finally:
        connection.close()


@pytest.mark.live
@pytest.mark.xdist_group("edge")
def test_service_says_https_behind_the_edge(fronted: Fronted) -> None:
    # FastAPI answers /livez/ with a redirect to /livez, an absolute URL built from request.url.
    through_edge, edge_headers, _ = fronted.edge.request("/livez/")
    direct, direct_headers = direct_request(fronted.service.port, "/livez/")

    assert (through_edge, edge_headers["Location"]) == (307, f"https://{LOOPBACK}/livez")
    assert (direct, direct_headers["Location"]) == (307, f"http://{LOOPBACK}:{fronted.service.port}/livez")


@pytest.mark.live
@pytest.mark.xdist_group("edge")
def test_forwarded_for_is_believed_only_from_the_edge(fronted: Fronted) -> None:
    # The service trusts X-Forwarded-For from 127.0.0.1 and ::1 (its default), where nginx connects from.
    # Every client below sends a forged one; the access line shows whom the service believed.
    forged = {"X-Forwarded-For": FORGED}
    seen: dict[str, str] = {}
    for case, send in {
        # Control: a peer the service trusts is believed (so the header does reach it and is read).
        "direct from a trusted address": lambda h: direct_request(fronted.service.port, "/", headers=h),
        "direct from another address": lambda h: direct_request(
            fronted.service.port, "/", headers=h, source=OTHER_CLIENT
        ),
        # nginx replaces the client's list with the address it saw ($remote_addr): the forged entry
        # never reaches the service, even from a client on an address the service trusts.
        "edge from a trusted address": lambda h: fronted.edge.request("/", headers=h),
        "edge from another address": lambda h: fronted.edge.request("/", headers=h, source=OTHER_CLIENT),
    }.items():
        request_id = new_id()
        assert send({**forged, "X-Request-ID": request_id})[0] == 200
        seen[case] = fronted.service_client(request_id)

    assert seen == {
        "direct from a trusted address": FORGED,
        "direct from another address": OTHER_CLIENT,
        "edge from a trusted address": LOOPBACK,
        # The real client, though the service's peer is nginx on 127.0.0.1: the edge's header is believed.
        "edge from another address": OTHER_CLIENT,
    }


@pytest.mark.live
@pytest.mark.xdist_group("edge")
@pytest.mark.parametrize(
    "sent", [None, "client-chosen.id:1", "not a valid id"], ids=["none", "the client's", "an invalid one"]
)
def test_edge_and_service_log_the_same_request_id(fronted: Fronted, sent: str | None) -> None:
    marker = new_id()  # in the query, to find this request's edge line when the id is nginx's own
    status, headers, _ = fronted.edge.request(f"/?request={marker}", headers={"X-Request-ID": sent} if sent else {})
    assert status == 200
    request_id = headers["X-Request-ID"]  # the service's answer says which id it used

    assert f"request_id={request_id} " in fronted.edge_access_line(marker)
    assert f"/?request={marker}" in fronted.service_access_line(request_id)
    if sent == "client-chosen.id:1":
        assert request_id == sent
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)  # nginx's $request_id


# The shipped site's per-client request rate: 20 per second, with bursts of 40 answered at once.
RATE, BURST = 20, 40


@pytest.mark.live
@pytest.mark.xdist_group("edge")
def test_edge_limits_the_request_rate_per_client(fronted: Fronted) -> None:
    # From another address (this host's own 127.0.0.1 is exempt), requests on one connection until the
    # first 429. However slow the machine, nginx may answer the burst plus what the rate refilled meanwhile.
    connection = http.client.HTTPSConnection(
        LOOPBACK,
        fronted.edge.https_port,
        timeout=10,
        context=fronted.edge.tls_context(),
        source_address=(OTHER_CLIENT, 0),
    )
    answered, limited, started = 0, False, time.monotonic()

    def allowed() -> float:  # what nginx may answer so far: the burst, plus what the rate refilled
        return BURST + RATE * (time.monotonic() - started) + 1

    try:
        while not limited and answered <= allowed() and time.monotonic() - started < 20:
            connection.request("GET", "/livez")
            response = connection.getresponse()
            response.read()
            assert response.status in {200, 429}, response.status
            limited = response.status == 429
            answered += not limited
    finally:
        connection.close()
    within_limit = answered <= allowed()
    exempt = {fronted.edge.request("/livez")[0] for _ in range(BURST + 10)}
    if not limited and within_limit:
        pytest.skip(f"this client sent fewer than {RATE} requests/s: the limit cannot be reached")

    assert limited, f"{answered} answered, more than the limit allows, and no 429"
    assert answered >= BURST  # the burst was answered at once
    assert exempt == {200}


# --- reload under load ------------------------------------------------------------------------------


def wrk_with_reload(command: list[str], service: LiveServer) -> tuple[WrkResult, set[int]]:
    """Run wrk (`command`, RELOAD_SECONDS long), SIGHUP the server's main process RELOAD_AFTER seconds in (what
    `systemctl reload` sends), and wait until every worker has been replaced. Returns wrk's report and the
    new workers."""
    before = service.wait_for_workers(RELOAD_WORKERS)
    wrk = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(RELOAD_AFTER)  # a timed point inside a load of known length
        service.signal_server(signal.SIGHUP)
        output, _ = wrk.communicate(timeout=RELOAD_SECONDS + 30)
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    assert wrk.returncode == 0, f"wrk failed ({wrk.returncode}):\n{output}"
    replaced = service.wait_for_workers(RELOAD_WORKERS, without=before, timeout=60)
    return WrkResult.parse(output), replaced


def upstream_errors(error_log: str) -> int:
    """Lines where nginx met a closed, reset or refused upstream connection (each then retried or failed)."""
    return sum("upstream" in line and "[error]" in line for line in error_log.splitlines())


@pytest.mark.live
@pytest.mark.load
@pytest.mark.xdist_group("live")  # with the other load tests: one at a time on the two cores
@pytest.mark.skipif(not wrk_installed(), reason=WRK_MISSING)
@pytest.mark.parametrize("server", SERVERS)
def test_reload_under_load_loses_no_request_through_the_edge(
    server: str, installed_project: Installer, tmp_path: Path
) -> None:
    project = installed_project(server, "host")
    env = project_env(WEB_CONCURRENCY=str(RELOAD_WORKERS))
    options = {"seconds": RELOAD_SECONDS, "connections": RELOAD_CONNECTIONS, "threads": 1}
    edge_runs: list[WrkResult] = []
    with live_server(project, env, tmp_path / "service.log") as service:
        service.wait_ready()
        with edge(project, service.port, tmp_path / "nginx") as front:
            for run in range(1, RELOAD_RUNS + 1):
                # Served directly first (the comparison; not asserted), then through the edge.
                direct, _ = wrk_with_reload(wrk_command(f"http://{LOOPBACK}:{service.port}/", **options), service)
                figure(f"{server} reload {run}/{RELOAD_RUNS} served directly", direct.summary())
                errors_before = upstream_errors(front.error_log())
                through, _ = wrk_with_reload(https_wrk_command(front.https_port, "/", **options), service)
                retried = upstream_errors(front.error_log()) - errors_before
                figure(
                    f"{server} reload {run}/{RELOAD_RUNS} through the edge",
                    f"{through.summary()}; nginx met {retried} closed or refused upstream connections",
                )
                edge_runs.append(through)

    for through in edge_runs:
        assert through.requests > 1000, through.output  # the load ran
        assert through.socket_errors == 0, through.output
        assert through.non_2xx == 0, through.output
