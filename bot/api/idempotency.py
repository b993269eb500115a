"""``Idempotency-Key`` on writes: the first answer is kept per (token, key); a retry with the same
body gets it again, the same key with another body is refused (422)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.api.problems import ApiProblem, FieldError
from storage.housekeeping import IDEMPOTENCY_KEEP
from storage.models import ApiIdempotency


def request_hash(path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{path}\n{canonical}".encode()).hexdigest()


def first_answer(
    session: Session, token_id: int, key: str, digest: str, now: datetime
) -> tuple[int, dict[str, Any]] | None:
    """The kept answer to this token's ``key``; None for a new request (a key older than
    IDEMPOTENCY_KEEP is forgotten here, whether or not the housekeeping job has run)."""
    row = session.get(ApiIdempotency, (token_id, key))
    if row is not None and row.created_at < now - IDEMPOTENCY_KEEP:
        session.delete(row)
        session.flush()
        row = None
    if row is None:
        return None
    if row.request_hash != digest:
        raise ApiProblem(
            422,
            "this Idempotency-Key was used with another request",
            errors=[FieldError(field="Idempotency-Key", message="reused with a different body")],
        )
    return row.status, dict(row.body)


def remember(
    session: Session, token_id: int, key: str, digest: str, status: int, body: dict[str, Any], now: datetime
) -> None:
    session.add(
        ApiIdempotency(
            token_id=token_id, key=key, request_hash=digest, status=status, body=body, created_at=now
        )
    )
    session.flush()
