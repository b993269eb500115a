"""Signed, expiring, single-purpose page links (/p/<token>): who, which page, which week."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import Secret

DEFAULT_TTL = timedelta(days=7)


class BadLink(Exception):
    """Tampered, expired or malformed; the page shows a friendly message, never data."""


@dataclass(frozen=True)
class Claims:
    person: str
    page: str
    week: str
    expires: int
    extra: dict[str, str]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: Secret, payload: str) -> str:
    # A separate sub-key per purpose: the same secret also encrypts data at rest.
    sub = hashlib.sha256(b"planloop-links\x00" + key.get().encode()).digest()
    return _b64(hmac.new(sub, payload.encode(), hashlib.sha256).digest())


class LinkSigner:
    def __init__(self, keys: tuple[Secret, ...], public_url: str, ttl: timedelta = DEFAULT_TTL):
        if not keys:
            raise ValueError("a secret key is needed to sign page links")
        self.keys = keys
        self.public_url = public_url.rstrip("/")
        self.ttl = ttl

    def token(self, person: str, page: str, week: str, now: datetime, **extra: str) -> str:
        body = {"p": person, "g": page, "w": week, "e": int((now + self.ttl).timestamp()), "x": extra}
        payload = _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
        return f"{payload}.{_mac(self.keys[0], payload)}"

    def url(self, person: str, page: str, week: str, now: datetime, **extra: str) -> str:
        return f"{self.public_url}/p/{self.token(person, page, week, now, **extra)}"

    def verify(self, token: str, now: datetime, page: str | None = None) -> Claims:
        payload, _, mac = token.partition(".")
        if not payload or not mac or not token.isascii():  # compare_digest refuses non-ASCII text
            raise BadLink("malformed")
        # Any key of the rotation list may have signed it (newest first).
        if not any(hmac.compare_digest(_mac(k, payload), mac) for k in self.keys):
            raise BadLink("signature")
        try:
            body = json.loads(_unb64(payload))
            claims = Claims(
                str(body["p"]), str(body["g"]), str(body["w"]), int(body["e"]), dict(body.get("x", {}))
            )
        except (ValueError, KeyError, TypeError):
            raise BadLink("malformed") from None
        if now.timestamp() > claims.expires:
            raise BadLink("expired")
        if page is not None and claims.page != page:
            raise BadLink("wrong page")
        return claims
