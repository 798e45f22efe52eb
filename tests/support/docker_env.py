"""A working Docker engine plus offline-seeded base images for the test suite.

Registries are unreachable here, so the images the generated Dockerfile starts
from are built locally under the names it expects:

* ``python:3.X-slim`` from a ``debootstrap``-ed Debian whose python3 is 3.X;
* ``ghcr.io/astral-sh/uv:V`` ``FROM scratch`` holding the binaries of the uv V wheel;
* ``nginx:TAG`` (the edge in front of compose's app) from a ``debootstrap``-ed Debian with Debian's
  nginx-light, laid out like the official image: ``nginx.conf`` includes ``conf.d/*.conf``, a
  ``conf.d/default.conf`` that a site mounted in its place replaces, logs to stdout/stderr, user
  ``nginx``, ``CMD nginx -g 'daemon off;'`` and ``STOPSIGNAL SIGQUIT``. Its nginx is Debian's
  (NGINX_SUITE's version), not the tag's: what the tests prove is the site and the compose wiring, and
  the site uses only directives both have.
* ``postgres:17`` (compose's ``db`` for database=postgres) from the seeded python image (Debian
  trixie) with Debian's postgresql-17, behaving as the official image does for what compose.yaml uses:
  POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB create the role and database on the first start into
  PGDATA (/var/lib/postgresql/data), later starts on that data skip it; it listens on 0.0.0.0:5432 with
  password (scram-sha-256) authentication, runs as ``postgres``, has ``pg_isready`` on PATH and stops
  on SIGTERM or SIGINT (the image's STOPSIGNAL, fast shutdown). Its apt packages come from Debian's
  archive during ``docker build``.

Builds go through Debian's docker client with BuildKit (``RUN --mount`` needs it).
Standard library only; pytest-xdist workers may call in concurrently, so engine
start and every seeding step run under an ``fcntl.flock`` in the cache dir.

Warm up (CI, or by hand):

    python -m tests.support.docker_env [PYTHON_TAG [UV_VERSION [NGINX_TAG [POSTGRES_TAG]]]]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

# Debian's client has the buildx/BuildKit path; /usr/local/bin/docker is newer but
# lacks the buildx plugin and falls back to the legacy builder (no RUN --mount).
DOCKER = "/usr/bin/docker"

ENGINE_START_TIMEOUT = 60.0
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
DEFAULT_DEBIAN_MIRROR = "http://deb.debian.org/debian"  # debootstrap's own default
# Only suites whose python3 has that minor version can back a python:3.X image.
DEBIAN_SUITE_FOR_PYTHON = {"3.13": "trixie"}
PYTHON_IMAGE_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    # The network intercepts TLS: pip and uv reach PyPI only via the host's bundle.
    # uv honours SSL_CERT_FILE by itself; UV_NATIVE_TLS is not set because uv 0.13
    # prints a deprecation warning (use UV_SYSTEM_CERTS) on every call with it.
    f"ENV SSL_CERT_FILE={HOST_CA_BUNDLE}",
    f"ENV PIP_CERT={HOST_CA_BUNDLE}",
    'CMD ["python3"]',  # same default command as the official image
)

# The Debian release the nginx image is bootstrapped from, and what goes in it.
NGINX_SUITE = "trixie"
NGINX_PACKAGES = ("nginx-light",)
NGINX_UID = 101  # the official image's nginx user and group
# The official image's layout, written here in its own words: the main file includes every
# conf.d/*.conf in the http block, with a default.conf that answers on port 80.
NGINX_CONF = """\
user nginx;
worker_processes auto;
error_log /var/log/nginx/error.log notice;
pid /run/nginx.pid;

events {
    worker_connections 1024;
}

http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    log_format main '$remote_addr - $remote_user [$time_local] "$request" '
                    '$status $body_bytes_sent "$http_referer" '
                    '"$http_user_agent" "$http_x_forwarded_for"';
    access_log /var/log/nginx/access.log main;
    sendfile on;
    keepalive_timeout 65;
    include /etc/nginx/conf.d/*.conf;
}
"""
NGINX_DEFAULT_SITE = """\
server {
    listen 80;
    server_name localhost;
    location / {
        root /usr/share/nginx/html;
        index index.html;
    }
}
"""
# `docker import` takes no STOPSIGNAL: the root filesystem is imported under NGINX_ROOTFS_IMAGE, and
# the image is built FROM it with this Dockerfile.
NGINX_ROOTFS_IMAGE = f"fastapi-deploy-template/nginx-rootfs:{NGINX_SUITE}"
NGINX_DOCKERFILE = f"""\
FROM {NGINX_ROOTFS_IMAGE}
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EXPOSE 80
# nginx's graceful shutdown (finish the requests in flight), as the official image asks for.
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
"""

log = logging.getLogger(__name__)

# Held for the life of the process that started dockerd: dropping the Popen would
# emit "subprocess still running" ResourceWarnings in the middle of a test run.
_dockerd: subprocess.Popen[bytes] | None = None


def docker_env() -> dict[str, str]:
    return {**os.environ, "DOCKER_BUILDKIT": "1"}


def docker(
    *args: str, check: bool = True, timeout: float = 600, capture: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOCKER, *args],
        env=docker_env(),
        check=check,
        timeout=timeout,
        capture_output=capture,
        text=True,
    )


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    path = Path(base) / "fastapi-deploy-template"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """Serialise a step across processes (xdist workers) with a lock file."""
    with open(cache_dir() / f"{name}.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def _timed(what: str) -> Iterator[None]:
    start = time.monotonic()
    yield
    log.info("%s: %.1f s", what, time.monotonic() - start)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _checked(what: str, cmd: list[str], timeout: float, **kwargs) -> str:
    """Run cmd, returning stdout; any failure becomes a RuntimeError naming the step."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{what}: timed out after {timeout:.0f} s") from None
    except OSError as exc:
        raise RuntimeError(f"{what}: {exc}") from None
    if proc.returncode:
        output = _tail(proc.stderr or proc.stdout)
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{output}")
    return proc.stdout


# --- engine -----------------------------------------------------------------


def _engine_error() -> str | None:
    """None when the engine answers, else the client's one-line complaint."""
    # `docker version` rather than `docker info`: same round trip to the daemon,
    # but it fails with a one-line reason (info buries it in its report).
    try:
        proc = docker("version", "--format", "{{.Server.Version}}", check=False, timeout=20)
    except subprocess.TimeoutExpired:
        return "docker version timed out"
    if proc.returncode == 0:
        return None
    lines = proc.stderr.strip().splitlines()
    return lines[0] if lines else f"docker version exited {proc.returncode}"


def _start_dockerd() -> str | None:
    """Start dockerd detached, poll until it answers; None on success, else why not."""
    global _dockerd
    log_path = cache_dir() / "dockerd.log"
    with open(log_path, "ab") as log_file:
        # Own session: outlives this test process and ignores its Ctrl-C.
        _dockerd = subprocess.Popen(
            ["dockerd"],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + ENGINE_START_TIMEOUT
    while time.monotonic() < deadline:
        if _engine_error() is None:
            log.info("started dockerd (pid %d, log %s)", _dockerd.pid, log_path)
            return None
        if _dockerd.poll() is not None:
            last = _tail(log_path.read_text(errors="replace"), 1)
            return f"dockerd exited with {_dockerd.returncode} ({log_path}): {last}"
        time.sleep(0.5)
    return f"dockerd did not answer within {ENGINE_START_TIMEOUT:.0f} s (see {log_path})"


def engine_unavailable_reason() -> str | None:
    """None when an engine answers (starting dockerd if needed), else why not."""
    if not os.access(DOCKER, os.X_OK):
        return f"no {DOCKER} (apt-get install docker.io)"
    if _engine_error() is None:
        return None
    if shutil.which("dockerd") is None:
        return "no dockerd on PATH (apt-get install docker.io)"
    if os.geteuid() != 0:
        return f"not root: cannot start dockerd ({_engine_error()})"
    with _locked("engine"):
        if _engine_error() is None:  # another worker started it while we waited
            return None
        with _timed("engine start"):
            return _start_dockerd()


def _image_present(tag: str) -> bool:
    proc = docker("image", "inspect", "--format", "{{.Id}}", tag, check=False)
    return proc.returncode == 0


def _lock_name(tag: str) -> str:
    return "image-" + re.sub(r"[^\w.-]", "_", tag)


# --- python:3.X-slim ---------------------------------------------------------


def _python_minor(tag: str) -> str:
    match = re.fullmatch(r"(?:[\w.-]+/)*python:(\d+\.\d+)[\w.-]*", tag)
    if not match:
        raise RuntimeError(f"{tag!r} is not a python:X.Y[-variant] image tag")
    return match[1]


def _debian_mirror() -> str:
    """The Debian archive apt uses (known reachable), else debootstrap's default."""
    apt = Path("/etc/apt")
    uris: list[str] = []
    for path in [
        apt / "sources.list",
        *sorted((apt / "sources.list.d").glob("*.list")),
    ]:
        if path.is_file():
            for line in path.read_text().splitlines():
                words = re.sub(r"\[.*?\]", "", line).split()  # drop [arch=...] options
                if len(words) >= 2 and words[0] == "deb":
                    uris.append(words[1])
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        for line in path.read_text().splitlines():
            if line.startswith("URIs:"):
                uris += line.split()[1:]
    # The main archive, not debian-security or third-party repositories.
    main = [uri.rstrip("/") for uri in uris if uri.rstrip("/").endswith("/debian")]
    return main[0] if main else DEFAULT_DEBIAN_MIRROR


def _unmount_below(root: Path) -> None:
    """Undo mounts a killed debootstrap left in root (it only cleans up on a clean
    exit), so removing root never reaches into the host's /proc, /sys or /dev."""
    prefix = f"{root}/"
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], check=False)


def _customise_root(root: Path) -> None:
    ca_bundle = root / HOST_CA_BUNDLE.lstrip("/")
    ca_bundle.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HOST_CA_BUNDLE, ca_bundle)
    # The official image has Python in /usr/local/bin; Dockerfiles rely on that.
    for name in ("python", "python3"):
        (root / "usr/local/bin" / name).symlink_to("/usr/bin/python3")
    # Like the official image, ship without apt lists and downloaded .debs (~100 MB).
    for pattern in (
        "var/lib/apt/lists/*_*",
        "var/cache/apt/archives/*.deb",
        "var/cache/apt/*.bin",
    ):
        for leftover in root.glob(pattern):
            leftover.unlink()


def _bootstrap_rootfs(suite: str, packages: tuple[str, ...], tarball: Path, finish: Callable[[Path], None]) -> None:
    """debootstrap `suite` (minbase plus `packages`), `finish(root)`, then tar it as `tarball`."""
    if shutil.which("debootstrap") is None:
        raise RuntimeError("no debootstrap on PATH (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise RuntimeError("not root: cannot run debootstrap")
    root = tarball.with_suffix(".tmp")
    _unmount_below(root)
    shutil.rmtree(root, ignore_errors=True)  # leftover of an interrupted run
    mirror = _debian_mirror()
    try:
        with _timed(f"debootstrap {suite} ({', '.join(packages)}) from {mirror}"):
            _checked(
                f"debootstrap {suite} into {root}",
                ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, str(root), mirror],
                timeout=1800,
            )
    finally:
        _unmount_below(root)
    finish(root)
    partial = tarball.with_suffix(".partial")
    with _timed(f"cache root filesystem as {tarball}"):
        _checked(
            "tar root filesystem",
            ["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."],
            timeout=600,
        )
        partial.replace(tarball)  # atomic: a half-written tarball is never used
    shutil.rmtree(root)


def _import_image(tag: str, tarball: Path, changes: tuple[str, ...]) -> None:
    options = [arg for change in changes for arg in ("-c", change)]
    with _timed(f"docker import {tag}"), open(tarball, "rb") as stream:
        _checked(
            f"docker import {tag}",
            [DOCKER, "import", *options, "-", tag],
            timeout=600,
            stdin=stream,
            env=docker_env(),
        )


def seed_python_image(tag: str) -> None:
    """Create ``tag`` (e.g. python:3.13-slim) offline unless present.

    Raises RuntimeError saying why when that is impossible or fails.
    """
    minor = _python_minor(tag)
    suite = DEBIAN_SUITE_FOR_PYTHON.get(minor)
    if suite is None:
        supported = ", ".join(f"{v} (Debian {s})" for v, s in DEBIAN_SUITE_FOR_PYTHON.items())
        raise RuntimeError(f"cannot seed {tag} offline: only Python {supported} can be seeded")
    if _image_present(tag):
        return
    with _locked(_lock_name(tag)):
        if _image_present(tag):
            return
        tarball = cache_dir() / f"{suite}-python{minor}-rootfs.tar"

        def finish(root: Path) -> None:
            if not (root / f"usr/bin/python{minor}").exists():
                raise RuntimeError(f"Debian {suite} did not install python{minor} (see {root})")
            _customise_root(root)

        with _locked(f"rootfs-{suite}"):  # shared by every tag of this Python version
            if not tarball.exists():
                _bootstrap_rootfs(suite, ("python3", "python3-venv", "ca-certificates"), tarball, finish)
        _import_image(tag, tarball, PYTHON_IMAGE_CHANGES)


# --- nginx:TAG ------------------------------------------------------------------


def _nginx_root(root: Path) -> None:
    """Lay Debian's nginx out as the official image has it (see the module's docstring)."""
    if not (root / "usr/sbin/nginx").exists():
        raise RuntimeError(f"Debian {NGINX_SUITE} did not install nginx (see {root})")
    etc = root / "etc/nginx"
    (etc / "nginx.conf").write_text(NGINX_CONF)
    (etc / "conf.d").mkdir(exist_ok=True)
    (etc / "conf.d/default.conf").write_text(NGINX_DEFAULT_SITE)
    for debian_only in ("sites-enabled", "sites-available"):
        shutil.rmtree(etc / debian_only, ignore_errors=True)
    html = root / "usr/share/nginx/html"
    html.mkdir(parents=True, exist_ok=True)
    (html / "index.html").write_text("<!DOCTYPE html><title>Welcome to nginx!</title><h1>Welcome to nginx!</h1>\n")
    logs = root / "var/log/nginx"
    logs.mkdir(parents=True, exist_ok=True)
    for name, target in (("access.log", "/dev/stdout"), ("error.log", "/dev/stderr")):
        (logs / name).unlink(missing_ok=True)
        (logs / name).symlink_to(target)
    with open(root / "etc/passwd", "a") as passwd:
        passwd.write(f"nginx:x:{NGINX_UID}:{NGINX_UID}:nginx user:/nonexistent:/usr/sbin/nologin\n")
    with open(root / "etc/group", "a") as group:
        group.write(f"nginx:x:{NGINX_UID}:\n")
    for pattern in ("var/lib/apt/lists/*_*", "var/cache/apt/archives/*.deb", "var/cache/apt/*.bin"):
        for leftover in root.glob(pattern):
            leftover.unlink()


def seed_nginx_image(tag: str) -> None:
    """Create ``tag`` (e.g. nginx:1.30, the name compose.yaml gives the edge) offline unless present.

    Raises RuntimeError saying why when that is impossible or fails.
    """
    if not re.fullmatch(r"nginx:[\w.-]+", tag):
        raise RuntimeError(f"{tag!r} is not an nginx:TAG image name")
    if _image_present(tag):
        return
    with _locked(_lock_name(tag)):
        if _image_present(tag):
            return
        tarball = cache_dir() / f"{NGINX_SUITE}-nginx-rootfs.tar"
        with _locked(f"rootfs-{NGINX_SUITE}-nginx"):  # shared by every nginx tag
            if not tarball.exists():
                _bootstrap_rootfs(NGINX_SUITE, NGINX_PACKAGES, tarball, _nginx_root)
        if not _image_present(NGINX_ROOTFS_IMAGE):
            _import_image(NGINX_ROOTFS_IMAGE, tarball, ())
        with _timed(f"docker build {tag}"):
            _checked(
                f"docker build {tag}",
                [DOCKER, "build", "--tag", tag, "-"],
                timeout=600,
                input=NGINX_DOCKERFILE,
                env=docker_env(),
            )


# --- postgres:MAJOR --------------------------------------------------------------

# The Debian trixie base the postgres image is built from (seeded first), and the majors trixie has.
POSTGRES_BASE_IMAGE = "python:3.13-slim"
POSTGRES_MAJORS = ("17",)
# The official image's entrypoint, the part compose.yaml relies on, in a few lines of its own: init
# on an empty PGDATA (the role with its password, the database, password auth from any address), then
# exec the server, so that the stop signal reaches postgres itself.
POSTGRES_ENTRYPOINT = """\
#!/bin/sh
set -eu
if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set to initialise the database}"
    user="${POSTGRES_USER:-postgres}"
    db="${POSTGRES_DB:-$user}"
    pwfile="$(mktemp)"
    printf '%s\\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \\
        --encoding=UTF8 --locale=C.UTF-8 "$PGDATA"
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    if [ "$db" != postgres ]; then
        # On the socket only, so that nothing connects before the database exists.
        pg_ctl --pgdata="$PGDATA" --options="-c listen_addresses=''" --wait start
        createdb --username="$user" "$db"
        pg_ctl --pgdata="$PGDATA" --mode=fast --wait stop
    fi
    echo "entrypoint: initialised $PGDATA (role $user, database $db)"
fi
exec "$@"
"""


def _postgres_dockerfile(major: str) -> str:
    return f"""\
FROM {POSTGRES_BASE_IMAGE}
ENV PATH=/usr/lib/postgresql/{major}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENV PGDATA=/var/lib/postgresql/data
# No service started by the packages' scripts, no "main" cluster: the entrypoint makes PGDATA's.
RUN set -eux; \\
    printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; \\
    apt-get update; \\
    apt-get install -y --no-install-recommends postgresql-common; \\
    sed -ri 's/^#? *create_main_cluster *=.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf; \\
    apt-get install -y --no-install-recommends postgresql-{major}; \\
    rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d; \\
    mkdir -p "$PGDATA" /var/run/postgresql; \\
    chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql; \\
    chmod 700 "$PGDATA"
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# A new named volume on PGDATA starts as a copy of this (empty, postgres-owned) directory.
VOLUME /var/lib/postgresql/data
USER postgres
EXPOSE 5432
# Fast shutdown: roll back open transactions, checkpoint, exit.
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
"""


def seed_postgres_image(tag: str) -> None:
    """Create ``tag`` (postgres:MAJOR, the name compose.yaml gives the database) offline unless present.

    Raises RuntimeError saying why when that is impossible or fails.
    """
    match = re.fullmatch(r"postgres:(\d+)", tag)
    if not match or match[1] not in POSTGRES_MAJORS:
        raise RuntimeError(
            f"cannot seed {tag!r}: only postgres:{' or postgres:'.join(POSTGRES_MAJORS)} (Debian trixie)"
        )
    if _image_present(tag):
        return
    seed_python_image(POSTGRES_BASE_IMAGE)
    with _locked(_lock_name(tag)):
        if _image_present(tag):
            return
        with tempfile.TemporaryDirectory(dir=cache_dir()) as context:
            (Path(context) / "Dockerfile").write_text(_postgres_dockerfile(match[1]))
            entrypoint = Path(context) / "docker-entrypoint.sh"
            entrypoint.write_text(POSTGRES_ENTRYPOINT)
            entrypoint.chmod(0o755)  # COPY keeps the mode
            with _timed(f"docker build {tag}"):
                _checked(
                    f"docker build {tag}",
                    [DOCKER, "build", "--tag", tag, context],
                    timeout=900,
                    env=docker_env(),
                )


# --- ghcr.io/astral-sh/uv:V --------------------------------------------------


def _pip() -> list[str]:
    # The test venv may lack pip (uv-made venvs do); fall back to the system one.
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    if pip := shutil.which("pip3"):
        return [pip]
    raise RuntimeError("pip is needed to download the uv wheel, and none was found")


def _prepare_uv_context(version: str, context: Path) -> None:
    """Fill context with uv and uvx from the uv wheel and a FROM scratch Dockerfile."""
    # Staged in a scratch dir and renamed into place: no half context on failure.
    with tempfile.TemporaryDirectory(dir=cache_dir()) as scratch:
        with _timed(f"download uv {version} wheel"):
            _checked(
                f"pip download uv=={version}",
                [
                    *_pip(),
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    f"uv=={version}",
                    "-d",
                    scratch,
                ],
                timeout=600,
            )
        (wheel,) = Path(scratch).glob("uv-*.whl")
        staged = Path(scratch, "context")
        staged.mkdir()
        with zipfile.ZipFile(wheel) as archive:
            for name in ("uv", "uvx"):
                target = staged / name
                target.write_bytes(archive.read(f"uv-{version}.data/scripts/{name}"))
                target.chmod(0o755)  # zipfile does not restore permissions
        # No "# syntax=" line: it would make BuildKit pull a frontend image.
        (staged / "Dockerfile").write_text("FROM scratch\nCOPY uv uvx /\n")
        staged.replace(context)


def seed_uv_image(version: str) -> None:
    """Create ghcr.io/astral-sh/uv:<version> offline unless present.

    Raises RuntimeError saying why on failure.
    """
    tag = f"ghcr.io/astral-sh/uv:{version}"
    if _image_present(tag):
        return
    with _locked(_lock_name(tag)):
        if _image_present(tag):
            return
        context = cache_dir() / f"uv-{version}"
        if not (context / "Dockerfile").exists():
            _prepare_uv_context(version, context)
        with _timed(f"docker build {tag}"):
            _checked(
                f"docker build {tag}",
                [DOCKER, "build", "-t", tag, str(context)],
                timeout=600,
                env=docker_env(),
            )


# --- a generated project's images ----------------------------------------------


def base_images(dockerfile: str) -> tuple[str, str]:
    """The python and uv images a Dockerfile builds from, as it names them (not its own stages)."""
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", dockerfile, re.MULTILINE | re.IGNORECASE))
    python_images = set(re.findall(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE)) - stages - {"scratch"}
    uv_images = set(re.findall(r"--from=(\S+/uv:\S+)", dockerfile))
    if len(python_images) != 1 or len(uv_images) != 1:
        raise RuntimeError(f"expected one base image and one uv image, found {python_images} and {uv_images}")
    return python_images.pop(), uv_images.pop()


def lock_in_base_image(project: Path, python_image: str, uv_image: str) -> None:
    """`uv lock` inside the seeded base image (this host may lack the project's Python), with the
    uv binary of the uv image the Dockerfile copies from. Raises RuntimeError saying why on failure."""
    scratch = project.parent / "uv-binary"
    scratch.mkdir(exist_ok=True)
    container = _checked("docker create", [DOCKER, "create", uv_image, "/uv"], timeout=60, env=docker_env()).strip()
    try:
        _checked("docker cp uv", [DOCKER, "cp", f"{container}:/uv", str(scratch / "uv")], timeout=60, env=docker_env())
    finally:
        docker("rm", container, check=False)
    _checked(
        f"uv lock in {python_image}",
        [
            DOCKER, "run", "--rm",
            "--volume", f"{scratch / 'uv'}:/usr/local/bin/uv:ro",
            "--volume", f"{project}:/src",
            "--workdir", "/src",
            "--env", "UV_PYTHON_DOWNLOADS=never",
            python_image, "uv", "lock",
        ],
        timeout=300,
        env=docker_env(),
    )  # fmt: skip


def _main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("python_tag", nargs="?", default="python:3.13-slim")
    parser.add_argument("uv_version", nargs="?", default="0.13.9")
    parser.add_argument("nginx_tag", nargs="?", default="nginx:1.30")
    parser.add_argument("postgres_tag", nargs="?", default="postgres:17")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    with _timed("engine ready"):
        reason = engine_unavailable_reason()
    if reason:
        log.error("no Docker engine: %s", reason)
        return 1
    try:
        with _timed(f"{args.python_tag} ready"):
            seed_python_image(args.python_tag)
        with _timed(f"ghcr.io/astral-sh/uv:{args.uv_version} ready"):
            seed_uv_image(args.uv_version)
        with _timed(f"{args.nginx_tag} ready"):
            seed_nginx_image(args.nginx_tag)
        with _timed(f"{args.postgres_tag} ready"):
            seed_postgres_image(args.postgres_tag)
    except RuntimeError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())
