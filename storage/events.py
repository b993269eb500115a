"""Inbound event ids: remember one, and say whether it was seen before (platform retries)."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete
from sqlalchemy.orm import Session

from storage.db import connection_of, counted, insert_new
from storage.hot import HotStatement
from storage.models import InboundEvent

# Feishu retries for ~7.1 h; keep ids well beyond the longest platform retry window.
KEEP = timedelta(days=3)


def first_time(session: Session | Connection, key: str, now: datetime) -> bool:
    """Record ``key``; False if it was already there. Runs in the caller's transaction, so a
    rolled-back handler also forgets the id and the platform's retry is processed again.

    One statement, ``INSERT … ON CONFLICT DO NOTHING``, whose row count answers: no read
    first, no savepoint, no exception on the duplicate path. A retry racing the original
    (another worker or replica) waits on the original's uncommitted row — PostgreSQL's
    unique index, SQLite's single writer — and then inserts nothing if that committed (a
    duplicate), or inserts if it rolled back (the retry is processed, as it should be)."""
    conn = connection_of(session)
    return counted(_insert(conn.dialect.name).rowcount(conn, {"key": key, "received_at": now}))


@functools.cache
def _insert(dialect: str) -> HotStatement:
    """Built once per dialect, and run on the driver's cursor (storage/hot.py)."""
    return HotStatement(insert_new(dialect, InboundEvent.__table__))  # type: ignore[arg-type]


def prune(session: Session, now: datetime) -> int:
    result = session.execute(delete(InboundEvent).where(InboundEvent.received_at < now - KEEP))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
