"""Container health check without curl: exit 0 when /livez answers 200 on this container's port.

Used by the Dockerfile's HEALTHCHECK and compose.yaml (`python -m <package>.serving.healthcheck`).
"""

from __future__ import annotations

import http.client
import sys

from {{ cookiecutter.package_name }}.settings import get_settings


def main() -> int:
    # A plain HTTP connection to this container's own port: no URL parsing, no other scheme.
    port = get_settings().port
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        connection.request("GET", "/livez")
        status = connection.getresponse().status
    except OSError as error:
        print(f"unhealthy: http://127.0.0.1:{port}/livez: {error}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
