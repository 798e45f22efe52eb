"""Container health check (Dockerfile, compose.yaml): exit 0 when /livez answers 200 where published
ports arrive. Standard library only: it runs every 10 s, and importing the settings cost 5x its CPU.
"""

import http.client
import os
import socket
import sys

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
ANY = {"", "0.0.0.0", "::"}  # noqa: S104  # nosec B104 (names the wildcard; binds nothing)


def own_address() -> str:
    # The container's address, where its published ports arrive (Docker writes it in /etc/hosts).
    return socket.gethostbyname(socket.gethostname())


def probe_host(host: str) -> str:
    """The address HOST names, but never loopback, which no published port reaches."""
    return own_address() if host in LOOPBACK | ANY else host


def main() -> int:
    host, port = os.environ.get("HOST", ""), int(os.environ.get("PORT", "{{ cookiecutter.port }}"))
    try:
        connection = http.client.HTTPConnection(probe_host(host), port, timeout=3)
        connection.request("GET", "/livez")
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as error:
        loopback = f" (HOST={host} is loopback, out of reach of published ports)" if host in LOOPBACK else ""
        print(f"unhealthy: GET /livez on port {port}: {error}{loopback}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: GET /livez on port {port} answered {status}", file=sys.stderr)
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
