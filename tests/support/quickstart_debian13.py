"""The README's Quickstart on a fresh Debian 13 box, as a non-root user: both commands, as written.

Heavy (it runs `make test`, the contributor's tier of the suite): by hand, never from the test suite.
Needs root and a Docker engine (tests/support/docker_env.py starts dockerd and seeds the image).

    python -m tests.support.quickstart_debian13 [--log PATH] [--pytest-addopts ARGS]

`--pytest-addopts` narrows what `make test` runs (the box gets it as PYTEST_ADDOPTS; the commands stay
as the README writes them), e.g. `--pytest-addopts "tests/test_live.py"` to check the box itself.

The box: the suite's offline python:3.13-slim (tests/support/docker_env.py: debootstrap trixie,
minbase, with python3 and python3-venv) plus git and make from Debian, without the image's
/usr/local/bin/python links, and a user `dev`. Nothing else: no uv, wrk or Docker.

Substitutions, since GitHub is out of reach: the template is this checkout's HEAD, cloned bare and
mounted at /srv/fastapi-deploy-template.git, which replaces `gh:org/fastapi-deploy-template` (as
file:///srv/..., a git clone as gh: is) and the clone URL. The questions get Enter each (defaults).
The network here intercepts TLS, so the box trusts the host's CA bundle (the image's SSL_CERT_FILE
and PIP_CERT); a real box needs neither.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support import docker_env

CHECKOUT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "python:3.13-slim"
IMAGE = "fastapi-deploy-template/debian13-quickstart"
USER_ID = 1000
BOX = f"""\
FROM {BASE_IMAGE}
RUN rm -f /usr/local/bin/python /usr/local/bin/python3 \\
 && apt-get update -qq \\
 && apt-get install -y -qq --no-install-recommends git make >/dev/null \\
 && rm -rf /var/lib/apt/lists/* \\
 && useradd --create-home --uid {USER_ID} dev
USER dev
WORKDIR /home/dev
"""
TEMPLATE_REPO = "/srv/fastapi-deploy-template.git"  # git clone names the folder after it, as on GitHub
SUBSTITUTIONS = {
    "gh:org/fastapi-deploy-template": f"file://{TEMPLATE_REPO}",
    "https://github.com/org/fastapi-deploy-template": TEMPLATE_REPO,
}


def quickstart_commands(readme: str) -> list[str]:
    """The command lines of the README's Quickstart block, substitutions applied."""
    section = readme.split("## Quickstart", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block, "README.md: no ```sh block under ## Quickstart"
    commands = [line for line in block[1].splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for old, new in SUBSTITUTIONS.items():
        assert any(old in command for command in commands), f"README.md Quickstart no longer says {old}"
        commands = [command.replace(old, new) for command in commands]
    return commands


def build_box() -> None:
    reason = docker_env.engine_unavailable_reason()
    if reason:
        raise SystemExit(f"error: no Docker engine: {reason}")
    docker_env.seed_python_image(BASE_IMAGE)
    build = subprocess.run(
        [docker_env.DOCKER, "build", "--tag", IMAGE, "-"],
        input=BOX,
        capture_output=True,
        text=True,
        env=docker_env.docker_env(),
        timeout=1200,
        check=False,
    )
    if build.returncode:
        raise SystemExit(f"error: building the Debian 13 box failed:\n{build.stderr[-3000:]}")


def bare_template(scratch: Path) -> Path:
    """This checkout's HEAD as a bare repository the box's user owns (git refuses others' repos)."""
    bare = scratch / "template.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", "--no-local", str(CHECKOUT), str(bare)], check=True)
    head = subprocess.run(["git", "-C", str(CHECKOUT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    subprocess.run(["git", "-C", str(bare), "update-ref", "HEAD", head.stdout.strip()], check=True)
    subprocess.run(["chown", "-R", f"{USER_ID}:{USER_ID}", str(bare)], check=True)
    return bare


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, default=Path("debian13-quickstart.log"), help="where the output goes")
    parser.add_argument("--pytest-addopts", default="", help="PYTEST_ADDOPTS in the box (narrows `make test`)")
    args = parser.parse_args()
    commands = quickstart_commands((CHECKOUT / "README.md").read_text())
    build_box()
    with tempfile.TemporaryDirectory() as scratch:
        bare = bare_template(Path(scratch))
        script = "set -eux\n" + "\n".join(commands) + "\n"
        started = time.monotonic()
        with open(args.log, "w") as log:
            result = subprocess.run(
                [docker_env.DOCKER, "run", "--rm", "--init", "--interactive",
                 "--env", f"PYTEST_ADDOPTS={args.pytest_addopts}",
                 "--volume", f"{bare}:{TEMPLATE_REPO}:ro", IMAGE, "bash", "-c", script],
                input="\n" * 200,  # Enter for every question
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=4 * 3600,
                check=False,
            )  # fmt: skip
        minutes = (time.monotonic() - started) / 60
    output = args.log.read_text(errors="replace").splitlines()
    summary = next((line for line in reversed(output) if re.search(r"\d+ (passed|failed)", line)), "(no summary)")
    print(f"exit {result.returncode} after {minutes:.1f} min: {summary.strip('= ')} (log: {args.log})")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
