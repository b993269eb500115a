"""Metric upsert on both databases: idempotent, later value wins, every replacement audited."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from sources.base import MetricSample as Sample
from storage.db import transaction
from storage.metrics import (
    finish_run,
    latest_sample,
    latest_value,
    recent_runs,
    start_run,
    upsert_samples,
    values_between,
)
from storage.models import AuditLog, MetricSample, SourceState
from storage.source_state import NoCipher, load_state, save_state

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
D = date(2026, 11, 22)


def s(metric: str, value: str, day: date = D, scope: str = "shop", source: str = "a") -> Sample:
    return Sample(metric, scope, day, Decimal(value), source, NOW)


def stored(db) -> dict:
    with transaction(db) as session:
        return {
            (r.metric, r.scope, r.day): (r.value, r.source) for r in session.scalars(select(MetricSample))
        }


def audits(db) -> list[AuditLog]:
    with transaction(db) as session:
        return list(session.scalars(select(AuditLog).order_by(AuditLog.id)))


def test_insert_then_same_rows_change_nothing(db) -> None:
    rows = [s("visitors", "7001"), s("pay_conversion_rate", "3.25"), s("visitors", "6500", D - timedelta(1))]
    with transaction(db) as session:
        r1 = upsert_samples(session, rows, now=NOW)
    assert (r1.inserted, r1.updated, r1.unchanged) == (3, 0, 0)
    before = stored(db)
    with transaction(db) as session:
        r2 = upsert_samples(session, rows, now=NOW + timedelta(hours=1))
    assert (r2.inserted, r2.updated, r2.unchanged) == (0, 0, 3)
    assert stored(db) == before
    assert audits(db) == []


def test_later_value_replaces_and_is_audited(db) -> None:
    with transaction(db) as session:
        upsert_samples(session, [s("visitors", "7001"), s("ctr", "1.5")], now=NOW)
    with transaction(db) as session:
        r = upsert_samples(
            session,
            [s("visitors", "7100", source="b"), s("ctr", "1.50", source="b")],
            now=NOW,
            actor="import:x",
        )
    assert (r.inserted, r.updated, r.unchanged) == (0, 1, 1)  # 1.50 equals 1.5: no change
    assert stored(db)[("visitors", "shop", D)] == (Decimal("7100"), "b")
    assert stored(db)[("ctr", "shop", D)] == (Decimal("1.5"), "a")
    (entry,) = audits(db)
    assert entry.action == "metric.replace" and entry.actor == "import:x"
    assert entry.subject == "visitors@shop:2026-11-22"
    assert Decimal(entry.detail["old"]) == Decimal("7001")
    assert Decimal(entry.detail["new"]) == Decimal("7100")
    assert (entry.detail["old_source"], entry.detail["source"]) == ("a", "b")


def test_last_sample_for_a_key_wins_within_one_call(db) -> None:
    with transaction(db) as session:
        r = upsert_samples(session, [s("visitors", "1"), s("visitors", "2")], now=NOW)
    assert r.inserted == 1
    assert stored(db)[("visitors", "shop", D)][0] == Decimal("2")


def test_many_rows_across_batches(db) -> None:
    rows = [s("visitors", str(i), D - timedelta(days=i)) for i in range(2500)]
    with transaction(db) as session:
        r = upsert_samples(session, rows, now=NOW, batch=700)
    assert r.inserted == 2500
    changed = [s("visitors", str(i + 1), D - timedelta(days=i)) for i in range(0, 2500, 2)]
    with transaction(db) as session:
        r = upsert_samples(session, rows[1::2] + changed, now=NOW, batch=700)
    assert (r.inserted, r.updated, r.unchanged) == (0, 1250, 1250)
    with transaction(db) as session:
        assert session.scalar(select(func.count()).select_from(AuditLog)) == 1250


@pytest.mark.parametrize(
    "value",
    ["0.12345678", "1234567890123456.12345678", "-0.00000001", "0", "99.99999999"],
)
def test_exact_decimals_survive_and_reimport_is_unchanged(db, value: str) -> None:
    with transaction(db) as session:
        upsert_samples(session, [s("pay_amount", value)], now=NOW)
    with transaction(db) as session:
        r = upsert_samples(session, [s("pay_amount", value)], now=NOW)
    assert r.unchanged == 1 and r.updated == 0


def test_latest_value_for_baselines(db) -> None:
    with transaction(db) as session:
        upsert_samples(
            session,
            [
                s("pay_conversion_rate", "3.00", date(2026, 11, 20)),
                s("pay_conversion_rate", "3.10", date(2026, 11, 22)),
                s("pay_conversion_rate", "9.99", date(2026, 11, 22), scope="other"),
                s("pay_conversion_rate", "4.00", date(2026, 11, 24)),
            ],
            now=NOW,
        )
    with transaction(db) as session:
        assert latest_value(session, "pay_conversion_rate", "shop", date(2026, 11, 23)) == Decimal("3.10")
        assert latest_value(session, "pay_conversion_rate", "shop", date(2026, 11, 21)) == Decimal("3.00")
        assert latest_value(session, "pay_conversion_rate", "shop", date(2026, 11, 19)) is None
        assert latest_value(session, "ctr", "shop", date(2026, 11, 23)) is None
        assert latest_sample(session, "pay_conversion_rate", "shop", date(2026, 11, 30)) == (
            date(2026, 11, 24),
            Decimal("4.00"),
        )
        assert values_between(
            session, "pay_conversion_rate", "shop", date(2026, 11, 21), date(2026, 11, 24)
        ) == [
            (date(2026, 11, 22), Decimal("3.10")),
            (date(2026, 11, 24), Decimal("4.00")),
        ]


def test_source_runs(db) -> None:
    with transaction(db) as session:
        run = start_run(session, "shop-reports", NOW)
        finish_run(run, NOW + timedelta(seconds=3), rows_read=10, rows_loaded=8, rows_refused=2, error="")
    with transaction(db) as session:
        (got,) = recent_runs(session, "shop-reports")
        assert (got.rows_read, got.rows_loaded, got.rows_refused) == (10, 8, 2)
        assert got.finished_at == NOW + timedelta(seconds=3)


class Rot13:
    """A stand-in sealer: the storage must store what it gets and never the plaintext."""

    def seal(self, plaintext: str) -> str:
        return "x" + plaintext[::-1]

    def open(self, sealed: str) -> str:
        if not sealed.startswith("x"):
            raise ValueError("not ours")
        return sealed[1:][::-1]


def test_state_secrets_are_stored_only_encrypted(db) -> None:
    with transaction(db) as session:
        save_state(session, "tb", NOW, values={"file:ab": "{}"}, secrets={"oauth": "tok-123"}, cipher=Rot13())
    with transaction(db) as session:
        values, secrets = load_state(session, "tb", Rot13())
        raw = {r.key: r.value for r in session.scalars(select(SourceState))}
    assert values == {"file:ab": "{}"} and secrets == {"oauth": "tok-123"}
    assert "tok-123" not in raw["secret:oauth"]
    with pytest.raises(NoCipher), transaction(db) as session:
        save_state(session, "tb", NOW, secrets={"oauth": "t"}, cipher=None)
