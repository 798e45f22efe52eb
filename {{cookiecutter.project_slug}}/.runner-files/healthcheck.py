"""Container health check without curl: exit 0 when /livez answers 200 where published ports arrive.

Used by the Dockerfile's HEALTHCHECK and compose.yaml (`python -m <package>.healthcheck`). Standard
library only: it runs every 10 s, and importing the settings (pydantic) costs more than the check.
"""

from __future__ import annotations

import http.client
import os
import socket
import sys

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
# Names the addresses that mean "every interface"; binds nothing.
ANY = {"", "0.0.0.0", "::"}  # noqa: S104  # nosec B104


def own_address() -> str:
    # The container's address, where its published ports arrive (Docker writes it in /etc/hosts).
    return socket.gethostbyname(socket.gethostname())


def probe_host(host: str) -> str:
    """Where to ask: the address HOST names, but never loopback, which no published port reaches."""
    return own_address() if host in LOOPBACK | ANY else host


def livez_status(host: str, port: int) -> int:
    connection = http.client.HTTPConnection(host, port, timeout=3)
    try:
        connection.request("GET", "/livez")
        return connection.getresponse().status
    finally:
        connection.close()


def main() -> int:
    # HOST and PORT as the server reads them; {{ cookiecutter.port }} is the image's port.
    host, port = os.environ.get("HOST", ""), int(os.environ.get("PORT", "{{ cookiecutter.port }}"))
    hint = f" (HOST={host} is loopback, out of reach of published ports: use 0.0.0.0)" if host in LOOPBACK else ""
    try:
        status = livez_status(probe_host(host), port)
    except (OSError, http.client.HTTPException) as error:
        print(f"unhealthy: GET /livez on port {port}: {error}{hint}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: GET /livez on port {port} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
