"""Container health check without curl: exit 0 when /livez answers 200 on this container's port.

Used by the Dockerfile's HEALTHCHECK and compose.yaml (`python -m <package>.healthcheck`).
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from {{ cookiecutter.package_name }}.settings import get_settings


def main() -> int:
    url = f"http://127.0.0.1:{get_settings().port}/livez"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as error:
        print(f"unhealthy: {url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
