"""Debian's nginx in front of a baked project's live service, with the project's own site file.

The baked `deploy/nginx/<slug>.conf` is used as shipped except for what only this machine decides, each
changed by one small function below that fails when the line it changes is not there: where nginx listens
(ports 80 and 443 -> free ports on 127.0.0.1 and ::1), where the service listens (the upstream's address),
the certificate (certbot's paths -> a self-signed one made here with openssl) and the access log's folder
(/var/log/nginx -> the test's folder). Everything else is verbatim. An nginx.conf of the test's own (a
main context like Debian's /etc/nginx/nginx.conf) `include`s it; nginx runs in the foreground, its prefix,
pid file, temporary folders and error log all in the test's folder.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.live_server import LOOPBACK, free_port, wait_until, wrk_command

NGINX = "/usr/sbin/nginx"
NGINX_MISSING = "nginx is not installed: sudo apt-get install nginx-light (Debian, Ubuntu)"
DEBIAN_WORKER_CONNECTIONS = 768  # Debian's /etc/nginx/nginx.conf


def https_wrk_command(port: int, path: str = "/", **options: float) -> list[str]:
    """live_server.wrk_command (its loopback-only check, its options) for the same URL over HTTPS."""
    command = wrk_command(f"http://{LOOPBACK}:{port}{path}", **options)  # type: ignore[arg-type]
    assert command[-1] == f"http://{LOOPBACK}:{port}{path}", command
    return [*command[:-1], f"https://{LOOPBACK}:{port}{path}"]


OPENSSL_MISSING = "openssl is not installed: sudo apt-get install openssl (Debian, Ubuntu)"


def missing_tool() -> str:
    """The one-line reason to skip when nginx or openssl is missing, else ""."""
    if shutil.which(NGINX) is None:
        return NGINX_MISSING
    return OPENSSL_MISSING if shutil.which("openssl") is None else ""


def site_file(project: Path) -> Path:
    """The project's shipped site: deploy/nginx/<slug>.conf."""
    return project / "deploy" / "nginx" / f"{project.name}.conf"


def _replace(text: str, pattern: str, replacement: str, count: int) -> str:
    """re.subn on whole lines (MULTILINE), asserting the site still has exactly `count` such lines."""
    new_text, found = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert found == count, f"the site file has {found} lines matching {pattern!r}, expected {count}"
    return new_text


# --- the only changes made to the shipped site ---------------------------------------------------


def listen_on(site: str, http_port: int, https_port: int) -> str:
    """`listen 80` / `listen 443` (IPv4 and IPv6) -> the same on free loopback ports."""
    for port, test_port in ((80, http_port), (443, https_port)):
        site = _replace(site, rf"^(\s*listen ){port}\b", rf"\g<1>{LOOPBACK}:{test_port}", 1)
        site = _replace(site, rf"^(\s*listen )\[::\]:{port}\b", rf"\g<1>[::1]:{test_port}", 1)
    return site


def upstream_at(site: str, port: int) -> str:
    """The upstream's `server 127.0.0.1:<port>` (host) or `server app:<port>` (docker) lines -> 127.0.0.1:`port`.
    There are as many as the site's `proxy_next_upstream_tries` (one per try: nginx tries each line once)."""
    tries = re.search(r"^\s*proxy_next_upstream_tries (\d+);", site, flags=re.MULTILINE)
    assert tries, "the site has no proxy_next_upstream_tries"
    return _replace(site, r"^(\s*server )(?:127\.0\.0\.1|app):\d+\b", rf"\g<1>{LOOPBACK}:{port}", int(tries[1]))


def certificate_at(site: str, certificate: Path, key: Path) -> str:
    """certbot's fullchain.pem and privkey.pem -> the test's self-signed certificate and its key."""
    site = _replace(
        site, r"^(\s*ssl_certificate )/etc/letsencrypt/live/[^/]+/fullchain\.pem;", rf"\g<1>{certificate};", 1
    )
    return _replace(site, r"^(\s*ssl_certificate_key )/etc/letsencrypt/live/[^/]+/privkey\.pem;", rf"\g<1>{key};", 1)


def logs_in(site: str, folder: Path) -> str:
    """`access_log /var/log/nginx/<file>` (host) or `/dev/stdout` (docker) -> a file in the test's folder."""
    site = re.sub(r"^(\s*access_log )/dev/stdout\b", r"\g<1>/var/log/nginx/access.log", site, flags=re.M)
    return _replace(site, r"^(\s*access_log )/var/log/nginx/", rf"\g<1>{folder}/", 1)


# --- the rest of the set-up --------------------------------------------------------------------


def self_signed_certificate(folder: Path, name: str = "example.com") -> tuple[Path, Path]:
    """A certificate for `name` and 127.0.0.1 (a day, P-256) and its key, made with openssl."""
    certificate, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "1", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name},IP:{LOOPBACK}",
         "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return certificate, key


MAIN_CONF = """\
# The test's main context, like Debian's /etc/nginx/nginx.conf; the site under test is included as shipped
# but for its addresses, certificate and log folder (tests/support/edge.py).
daemon off;
{user}worker_processes {workers};
pid {folder}/nginx.pid;
error_log {folder}/error.log;
worker_rlimit_nofile {nofile};
events {{
    worker_connections {worker_connections};
}}
http {{
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    access_log off;
    include {folder}/site.conf;
}}
"""


def write_config(
    site_text: str, folder: Path, *, workers: int = 2, worker_connections: int = DEBIAN_WORKER_CONNECTIONS
) -> Path:
    """nginx.conf (including site.conf, the prepared site) in `folder`; returns nginx.conf's path."""
    (folder / "site.conf").write_text(site_text)
    config = folder / "nginx.conf"
    # As root, nginx's workers would otherwise run as nobody, who cannot enter pytest's 0700 folders.
    user = "user root;\n" if os.geteuid() == 0 else ""
    config.write_text(
        MAIN_CONF.format(
            user=user,
            workers=workers,
            folder=folder,
            worker_connections=worker_connections,
            nofile=2 * worker_connections + 100,
        )
    )
    return config


def nginx_command(config: Path, *arguments: str) -> list[str]:
    folder = config.parent
    return [NGINX, "-p", f"{folder}/", "-c", str(config), "-e", str(folder / "error.log"), *arguments]


def check_config(config: Path) -> subprocess.CompletedProcess[str]:
    """`nginx -t` on the configuration (its verdict is on stderr)."""
    return subprocess.run(nginx_command(config, "-t"), capture_output=True, text=True, timeout=60, check=False)


def prepared_site(
    project: Path, folder: Path, *, service_port: int, certificate: tuple[Path, Path]
) -> tuple[str, int, int]:
    """The project's site with the machine's changes applied; returns (text, http port, https port)."""
    http_port, https_port = free_port(), free_port()
    while https_port == http_port:
        https_port = free_port()
    site = site_file(project).read_text()
    site = listen_on(site, http_port, https_port)
    site = upstream_at(site, service_port)
    site = certificate_at(site, *certificate)
    site = logs_in(site, folder)
    return site, http_port, https_port


@dataclass
class Edge:
    """A running nginx with a project's site, listening on 127.0.0.1:http_port and :https_port."""

    folder: Path
    http_port: int
    https_port: int
    certificate: Path
    process: subprocess.Popen[bytes]
    access_log: Path

    def error_log(self) -> str:
        return (self.folder / "error.log").read_text(errors="replace")

    def access_lines(self) -> list[str]:
        return self.access_log.read_text(errors="replace").splitlines() if self.access_log.exists() else []

    def tls_context(self) -> ssl.SSLContext:
        """A client context that trusts only the test's certificate (so a handshake proves nginx serves it)."""
        return ssl.create_default_context(cafile=str(self.certificate))

    def request(
        self,
        path: str,
        *,
        https: bool = True,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        source: str | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One request on a new connection (from the loopback address `source`, if given): status, headers, body."""
        source_address = (source, 0) if source else None
        if https:
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                LOOPBACK, self.https_port, timeout=timeout, context=self.tls_context(), source_address=source_address
            )
        else:
            connection = http.client.HTTPConnection(
                LOOPBACK, self.http_port, timeout=timeout, source_address=source_address
            )
        try:
            connection.request(method, path, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()

    def check_running(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"nginx exited with {self.process.returncode}:\n{self.error_log()[-3000:]}")


@contextlib.contextmanager
def edge(
    project: Path,
    service_port: int,
    folder: Path,
    *,
    workers: int = 2,
    worker_connections: int = DEBIAN_WORKER_CONNECTIONS,
) -> Iterator[Edge]:
    """nginx with the project's site in front of the service on 127.0.0.1:`service_port`, for a with-block.

    Makes its self-signed certificate, checks the configuration with `nginx -t`, starts nginx in the
    foreground in its own session, waits until both ports accept, and always stops it (SIGQUIT: nginx's
    graceful stop; SIGKILL to the group if that takes more than 10 s)."""
    folder.mkdir(parents=True, exist_ok=True)
    certificate = self_signed_certificate(folder)
    site, http_port, https_port = prepared_site(project, folder, service_port=service_port, certificate=certificate)
    config = write_config(site, folder, workers=workers, worker_connections=worker_connections)
    checked = check_config(config)
    assert checked.returncode == 0, f"nginx -t failed:\n{checked.stderr}"
    with open(folder / "nginx.out", "wb") as output:
        process = subprocess.Popen(
            nginx_command(config),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Edge(folder, http_port, https_port, certificate[0], process, folder / f"{project.name}.access.log")

    def accepting() -> bool:
        running.check_running()
        for port in (http_port, https_port):
            try:
                socket.create_connection((LOOPBACK, port), timeout=1).close()
            except OSError:
                return False
        return True

    try:
        wait_until(accepting, 30, f"nginx to listen on {http_port} and {https_port}")
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
