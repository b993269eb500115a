"""The doctor's HTTP: JSON calls to the bot's own API hosts only, with every failure a sentence.

A check never sees an exception from ``requests``: a timeout, a refused connection, an HTTP 429
or 5xx become ``Unreachable`` with a message a person can act on. Redirects are not followed, so
a call cannot leave the configured host, and a URL outside ``allowed`` is refused before any
byte is sent (the doctor talks to the configured ``api_base`` hosts and nothing else).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

DEFAULT_TIMEOUT = 10.0


class Unreachable(Exception):
    """The platform did not give an answer to judge: ``reason`` is one of timeout, network,
    rate_limited, server_error, not_json; ``detail`` says what happened (HTTP status, wait)."""

    def __init__(self, reason: str, detail: str, retry_after: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class Http:
    def __init__(
        self,
        session: requests.Session,
        allowed: Collection[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry_after_headers: tuple[str, ...] = ("Retry-After",),
    ):
        self.session = session
        self.allowed = {origin(base) for base in allowed if base}
        self.timeout = timeout
        self.retry_after_headers = retry_after_headers

    def call(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        if origin(url) not in self.allowed:
            raise ValueError(f"refusing to call {origin(url)}: not one of the bot's api_base hosts")
        try:
            resp = self.session.request(
                method,
                url,
                params=params,
                data=None if json_body is None else json.dumps(json_body, ensure_ascii=False).encode(),
                headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise Unreachable("timeout", f"{self.timeout:g} s") from None
        except requests.RequestException as exc:
            raise Unreachable("network", type(exc).__name__) from None
        wait = next((resp.headers[h] for h in self.retry_after_headers if h in resp.headers), "")
        if resp.status_code == 429:
            raise Unreachable("rate_limited", "HTTP 429", retry_after=wait)
        if resp.status_code >= 500:
            raise Unreachable("server_error", f"HTTP {resp.status_code}")
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Unreachable("not_json", f"HTTP {resp.status_code}")
        return Reply(resp.status_code, body, dict(resp.headers))
