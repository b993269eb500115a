"""The daily housekeeping job: retry guards forgotten once no retry can come, nothing else touched."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.worker.jobs import run_job
from storage import events
from storage.housekeeping import IDEMPOTENCY_KEEP
from storage.models import ApiIdempotency, InboundEvent


@pytest.mark.parametrize(
    "event_age, key_age, left",
    [
        (events.KEEP - timedelta(minutes=1), IDEMPOTENCY_KEEP - timedelta(minutes=1), (1, 1)),
        (events.KEEP + timedelta(minutes=1), IDEMPOTENCY_KEEP - timedelta(minutes=1), (0, 1)),
        (events.KEEP - timedelta(minutes=1), IDEMPOTENCY_KEEP + timedelta(minutes=1), (1, 0)),
        (events.KEEP + timedelta(days=30), IDEMPOTENCY_KEEP + timedelta(days=30), (0, 0)),
    ],
)
def test_old_event_ids_and_idempotency_keys_are_forgotten(services, clock, event_age, key_age, left):
    with services.sessions() as session, session.begin():
        events.first_time(session, "feishu-main:evt-1", clock() - event_age)
        session.add(ApiIdempotency(token_id=1, key="k1", request_hash="h", status=201, body={},
                                   created_at=clock() - key_age))  # fmt: skip
    result = run_job(services, "housekeeping", clock())
    assert result.detail == {"inbound_events": 1 - left[0], "idempotency_keys": 1 - left[1]}
    with services.sessions() as session:
        kept = (
            len(session.scalars(select(InboundEvent)).all()),
            len(session.scalars(select(ApiIdempotency)).all()),
        )
    assert kept == left
