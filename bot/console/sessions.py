"""Server-side console credentials: one-time sign-in links, OAuth states, sessions.

Every credential is a random token (``secrets.token_urlsafe(32)``) that only its holder sees (a
cookie, the printed link); the table keeps its SHA-256, so a copy of the database signs nobody in.
Functions take a ``Session`` and never commit: the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, or_, update
from sqlalchemy.orm import Session

from storage.models import ConsoleSession, Person

SESSION_TTL = timedelta(hours=12)
LINK_TTL = timedelta(minutes=10)
OAUTH_TTL = timedelta(minutes=10)  # the platforms' codes live 5 minutes; a state need not outlive that much
MAX_TOKEN = 200


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Signed:
    """A signed-in browser: who, and the CSRF token its forms must carry."""

    person_id: str
    csrf: str
    session_id: str  # the stored digest, to revoke this one session


def _usable(session: Session, token: str, kind: str, now: datetime) -> ConsoleSession | None:
    if not token or len(token) > MAX_TOKEN or not token.isascii():
        return None
    row = session.get(ConsoleSession, digest(token), with_for_update=True)
    if row is None or row.kind != kind or row.revoked_at is not None or row.expires_at <= now:
        return None
    return row


def create_link(session: Session, person_id: str, now: datetime, ttl: timedelta = LINK_TTL) -> str:
    """A one-time sign-in token for ``person_id`` (``planloop console link``)."""
    token = new_token()
    session.add(
        ConsoleSession(
            id=digest(token), kind="link", person_id=person_id, csrf="", detail={}, created_at=now,
            expires_at=now + ttl,
        )
    )  # fmt: skip
    return token


def redeem_link(session: Session, token: str, now: datetime) -> str | None:
    """The person a valid, unused link names (and the link is spent), or None."""
    row = _usable(session, token, "link", now)
    if row is None or row.used_at is not None:
        return None
    row.used_at = now
    return row.person_id


def start_oauth(session: Session, bot_id: str, now: datetime) -> tuple[str, str]:
    """A sign-in under way: (browser token for a cookie, ``state`` for the platform's redirect).
    Anyone may start one, so expired rows are purged here too."""
    purge(session, now, keep=timedelta(hours=1))
    token, state = new_token(), new_token()
    session.add(
        ConsoleSession(
            id=digest(token), kind="oauth", person_id=None, csrf="", detail={"bot": bot_id, "state": state},
            created_at=now, expires_at=now + OAUTH_TTL,
        )
    )  # fmt: skip
    return token, state


def finish_oauth(session: Session, token: str, bot_id: str, state: str, now: datetime) -> bool:
    """True once, when the browser's token holds this ``state`` for this bot (OAuth's CSRF check)."""
    row = _usable(session, token, "oauth", now)
    if row is None or row.used_at is not None or row.detail.get("bot") != bot_id:
        return False
    expected = str(row.detail.get("state", ""))
    if not state.isascii() or not hmac.compare_digest(expected.encode(), state.encode()):
        return False
    row.used_at = now
    return True


def purge(session: Session, now: datetime, keep: timedelta = timedelta(days=30)) -> int:
    """Forget credentials that expired more than ``keep`` ago (the audit log keeps the sign-ins)."""
    result = session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now - keep))
    return int(getattr(result, "rowcount", 0) or 0)


def open_session(session: Session, person_id: str, now: datetime, via: str) -> str:
    """A new signed-in session; returns the cookie's token. Old expired rows are purged here."""
    purge(session, now)
    token = new_token()
    session.add(
        ConsoleSession(
            id=digest(token), kind="session", person_id=person_id, csrf=secrets.token_urlsafe(24),
            detail={"via": via}, created_at=now, expires_at=now + SESSION_TTL,
        )
    )  # fmt: skip
    return token


def lookup(session: Session, token: str, now: datetime) -> Signed | None:
    """The signed-in person behind a cookie, if the session is live and the person still active."""
    if not token or len(token) > MAX_TOKEN or not token.isascii():
        return None
    row = session.get(ConsoleSession, digest(token))
    if row is None or row.kind != "session" or row.revoked_at is not None or row.expires_at <= now:
        return None
    person = session.get(Person, row.person_id) if row.person_id else None
    if person is None or not person.active:
        return None
    return Signed(person.id, row.csrf, row.id)


def csrf_ok(signed: Signed, posted: str) -> bool:
    return bool(posted) and posted.isascii() and hmac.compare_digest(signed.csrf.encode(), posted.encode())


def revoke(session: Session, session_id: str, now: datetime) -> None:
    row = session.get(ConsoleSession, session_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = now


def revoke_all(session: Session, now: datetime, person_id: str | None = None) -> int:
    """Revoke every session and unused link (of one person, or of everyone); returns how many."""
    # expired ones too: the count is then independent of the CLI's clock, and revoking is harmless
    query = update(ConsoleSession).where(
        or_(
            ConsoleSession.kind == "session",
            and_(ConsoleSession.kind == "link", ConsoleSession.used_at.is_(None)),
        ),
        ConsoleSession.revoked_at.is_(None),
    )
    if person_id is not None:
        query = query.where(ConsoleSession.person_id == person_id)
    result = session.execute(query.values(revoked_at=now).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)
