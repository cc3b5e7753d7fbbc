"""Container health check: exit 0 when a URL answers 2xx, 1 otherwise.

    python docker/healthcheck.py                               # /healthz on LISTEN's port
    python docker/healthcheck.py http://127.0.0.1:5055/health  # any other URL

The slim image has no curl or wget, hence the standard library. Proxy variables are
ignored: the check is always about this container.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 4.0
WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]", "*"}


def default_url(listen: str) -> str:
    """`/healthz` on the address the bot listens on (`LISTEN`, `host:port`)."""
    host, _, port = listen.rpartition(":")
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def check(url: str) -> str | None:
    """None when healthy, else why not. urllib raises for any answer but 2xx (after
    following redirects), so an answer that arrives is a healthy one."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=TIMEOUT_SECONDS):
            return None
    except urllib.error.HTTPError as error:
        return f"{url} answered {error.code}"
    except (OSError, ValueError) as error:
        return f"{url}: {error}"


def main(argv: list[str]) -> int:
    url = argv[0] if argv else default_url(os.environ.get("LISTEN", "127.0.0.1:8080"))
    problem = check(url)
    if problem is not None:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
