"""API tokens: scopes, creation (the secret shown once, only its SHA-256 kept), lookup, revocation.

A token is ``pl_`` + 43 URL-safe characters (256 random bits). Lookup is by the hash, so the
secret is never compared as text; ``prefix`` (its first 11 characters) names it in lists.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import ApiToken, AuditLog, Team

SCOPES = (
    "plans:read",
    "plans:write",
    "progress:read",
    "appraisals:read",
    "metrics:write",
    "templates:read",
    "templates:write",
    "switches:write",
    "scenarios:write",
    "webhooks:write",
)
ADMIN = "admin"  # every scope
TOKEN_PREFIX = "pl_"  # noqa: S105 - the visible start of every token, not a secret
PREFIX_CHARS = 11
DEFAULT_RATE = 600  # requests a minute per token


class TokenError(ValueError):
    """A token cannot be created as asked (unknown scope, team, expiry)."""


def parse_scopes(text: str) -> list[str]:
    scopes = sorted({s.strip() for s in text.split(",") if s.strip()})
    if not scopes:
        raise TokenError("--scopes: name at least one scope")
    unknown = [s for s in scopes if s not in (*SCOPES, ADMIN)]
    if unknown:
        raise TokenError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join((*SCOPES, ADMIN))}")
    return scopes


_DURATION = re.compile(r"^(\d{1,5})([dhw])$")


def parse_expiry(text: str, now: datetime) -> datetime:
    """``90d``, ``12h``, ``2w`` from ``now``."""
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match.group(1)) == 0:
        raise TokenError(f"--expires: {text!r} is not a duration such as 90d, 12h or 2w")
    n, unit = int(match.group(1)), match.group(2)
    return now + {"h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}[unit]


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def grants(scopes: Iterable[str], needed: str) -> bool:
    held = set(scopes)
    return ADMIN in held or needed in held


@dataclass(frozen=True)
class NewToken:
    row: ApiToken
    secret: str  # shown once, never stored


def create_token(
    session: Session,
    *,
    name: str,
    scopes: list[str],
    now: datetime,
    team: str | None = None,
    expires_at: datetime | None = None,
    rate_per_minute: int = DEFAULT_RATE,
    by: str = "admin",
) -> NewToken:
    if not name.strip() or len(name) > 100:
        raise TokenError("--name: 1 to 100 characters")
    if team is not None and session.get(Team, team) is None:
        raise TokenError(f"--team: no team with id {team!r}")
    if rate_per_minute < 1:
        raise TokenError("--rate: at least 1 request a minute")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name.strip(),
        prefix=secret[:PREFIX_CHARS],
        token_hash=hash_token(secret),
        scopes=list(scopes),
        team_id=team,
        rate_per_minute=rate_per_minute,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    session.add(
        AuditLog(
            at=now,
            actor=by,
            action="api.token.create",
            subject=f"token {row.id}",
            detail={"name": row.name, "scopes": row.scopes, "team": team},
        )
    )
    return NewToken(row, secret)


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(session: Session, token_id: int, *, now: datetime, by: str = "admin") -> ApiToken | None:
    row = session.get(ApiToken, token_id)
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at = now
        session.add(
            AuditLog(at=now, actor=by, action="api.token.revoke", subject=f"token {row.id}", detail={})
        )
    return row


def find_token(session: Session, secret: str) -> ApiToken | None:
    """The token whose secret this is, whatever its state (the caller checks expiry and revocation)."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))


def state(row: ApiToken, now: datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"
