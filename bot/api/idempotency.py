"""``Idempotency-Key`` on writes: the first answer is kept per (token, key); a retry with the same
body gets it again, the same key with another body is refused (422)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.api.problems import ApiProblem, FieldError
from storage.models import ApiIdempotency


def request_hash(path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{path}\n{canonical}".encode()).hexdigest()


def first_answer(session: Session, token_id: int, key: str, digest: str) -> tuple[int, dict[str, Any]] | None:
    row = session.get(ApiIdempotency, (token_id, key))
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
