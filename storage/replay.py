"""Callback signatures that do not sign the body, bound to the first message they came with.

A DingTalk robot callback is signed by ``timestamp`` + ``sign`` = HMAC(app secret, timestamp):
the body is not part of it, so whoever sees one genuine pair (a proxy log, a browser tool on the
receiving side) could send any body with it for the whole signature window. ``bind`` records the
pair with the message id it first arrived with, in the database so every replica sees it; the
same pair with another message id is refused. The same pair with the same id is the platform's
own retry and goes on to the usual duplicate check.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import AuditLog, SignedCallback


def pair_key(bot_id: str, *signed: str) -> str:
    """The row key: the bot and a hash of the signed values (nothing secret is stored)."""
    digest = hashlib.sha256("\n".join(signed).encode("utf-8")).hexdigest()
    return f"{bot_id[:130]}:{digest}"


def bind(session: Session, key: str, message_id: str, expires_at: datetime, now: datetime) -> str | None:
    """Bind ``key`` to ``message_id`` until ``expires_at``. None when it is bound to this message
    (now or before); otherwise the message id it was bound to first. Commit the caller's transaction
    to make the binding visible to the other replicas."""
    session.execute(delete(SignedCallback).where(SignedCallback.expires_at < now))
    bound = session.scalar(select(SignedCallback.message_id).where(SignedCallback.key == key))
    if bound is None:
        try:
            with session.begin_nested():
                session.execute(
                    insert(SignedCallback).values(key=key, message_id=message_id, expires_at=expires_at)
                )
            return None
        except IntegrityError:  # another replica bound it a moment ago
            bound = session.scalar(select(SignedCallback.message_id).where(SignedCallback.key == key))
    return None if bound == message_id else bound


def audit_replay(session: Session, actor: str, message_id: str, bound_to: str, now: datetime) -> None:
    session.add(
        AuditLog(
            at=now,
            actor=actor[:64],
            action="callback.replay_refused",
            subject=message_id[:200],
            detail={"bound_to": bound_to[:200]},
        )
    )
