"""`python -m bot.ops.healthcheck [URL]`: the container's HEALTHCHECK (the slim image has no curl).

Exit 0 when URL answers 200 within the timeout, else 1 with the reason on stderr. URL
defaults to $PLANLOOP_HEALTHCHECK_URL, else http://127.0.0.1:$PORT/healthz (PORT 8000).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence


def default_url(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get("PLANLOOP_HEALTHCHECK_URL") or f"http://127.0.0.1:{env.get('PORT', '8000')}/healthz"


def check(url: str, timeout: float = 3.0) -> str | None:
    """None if healthy, else why not."""
    if not url.startswith(("http://", "https://")):
        return f"not an http(s) URL: {url}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - scheme checked above
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        return f"{url}: {exc}"
    return None if status == 200 else f"{url}: HTTP {status}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    problem = check(args[0] if args else default_url())
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
