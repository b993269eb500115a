"""poll_source / import_file / sources_check against the database, end to end for files."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.config import SourceConfig
from bot.worker.polling import import_file, import_file_report, poll_source, sources_check
from storage.db import transaction
from storage.metrics import latest_value
from storage.models import AuditLog, MetricSample, SourceRun, SourceState
from tests.test_files import SYCM_CSV, SYCM_EXPECTED, _sycm_xlsx


def with_sources(services, *configs: SourceConfig):
    services.settings = dataclasses.replace(services.settings, sources=tuple(configs))
    return services


def stored(services) -> dict:
    with transaction(services.sessions) as session:
        return {(r.metric, r.scope, r.day): r.value for r in session.scalars(select(MetricSample))}


def count(services, model) -> int:
    with transaction(services.sessions) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_import_generic_file_twice_changes_nothing(services, tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        "date,metric,value,scope\n2026-11-22,pay_conversion_rate,3.00%,shop\n"
        "2026-11-22,complaint_rate,1.20%,shop\n2026-11-22,ctr,abc,shop\n",
        encoding="utf-8-sig",
    )
    loaded, refused, errors = import_file(services, path)
    assert (loaded, refused) == (2, 1)
    assert [(e.file, e.line, e.column) for e in errors] == [("m.csv", 4, "value")]
    first = stored(services)
    assert first == {
        ("pay_conversion_rate", "shop", date(2026, 11, 22)): Decimal("3.00"),
        ("complaint_rate", "shop", date(2026, 11, 22)): Decimal("1.20"),
    }
    report = import_file_report(services, path)
    assert (report.inserted, report.updated, report.unchanged) == (0, 0, 2)
    assert stored(services) == first
    assert count(services, AuditLog) == 0
    with transaction(services.sessions) as session:
        runs = list(session.scalars(select(SourceRun).order_by(SourceRun.id)))
    assert [(r.source_id, r.rows_read, r.rows_loaded, r.rows_refused) for r in runs] == [
        ("import", 3, 2, 1),
        ("import", 3, 2, 1),
    ]
    assert runs[0].detail["row_errors"][0]["line"] == 4


def test_import_with_source_preset_then_a_corrected_file(services, tmp_path: Path) -> None:
    with_sources(
        services, SourceConfig("shop-reports", "file", {"path": str(tmp_path), "preset": "sycm"}, {})
    )
    gbk = tmp_path / "店铺整体.csv"
    gbk.write_bytes(SYCM_CSV.encode("gbk"))
    report = import_file_report(services, gbk, "shop-reports")
    assert report.detail["encoding"] == "gb18030"
    assert stored(services) == SYCM_EXPECTED
    assert report.refused == 1

    fixed = tmp_path / "fixed.csv"
    fixed.write_bytes(SYCM_CSV.replace("abc", '"6,900"').encode("utf-8-sig"))
    report = import_file_report(services, fixed, "shop-reports")
    assert (report.refused, report.updated, report.inserted, report.unchanged) == (0, 0, 8, 13)
    with transaction(services.sessions) as session:
        assert latest_value(session, "visitors", "shop", date(2026, 11, 23)) == Decimal("6900")


def test_import_xlsx_export(services, tmp_path: Path) -> None:
    with_sources(
        services,
        SourceConfig(
            "daily", "file", {"path": str(tmp_path), "preset": "sycm", "scope_column": "店铺名称"}, {}
        ),
    )
    path = tmp_path / "日报.xlsx"
    _sycm_xlsx(path)
    loaded, refused, errors = import_file(services, path, "daily")
    assert (loaded, refused) == (2, 1)
    assert stored(services)[("pay_conversion_rate", "小店", date(2026, 11, 20))] == Decimal("3.25")


def test_import_unknown_source(services, tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="nope"):
        import_file(services, tmp_path / "x.csv", "nope")


def test_poll_folder_source_records_runs_and_hashes(services, tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "a.csv").write_bytes(SYCM_CSV.encode("gbk"))
    with_sources(services, SourceConfig("shop-reports", "file", {"path": str(folder), "preset": "sycm"}, {}))
    first = poll_source(services, "shop-reports")
    assert first.ok and (first.rows_read, first.rows_loaded, first.rows_refused) == (5, 2, 1)
    assert first.inserted == len(SYCM_EXPECTED)
    assert stored(services) == SYCM_EXPECTED
    second = poll_source(services, "shop-reports")
    assert second.ok and second.rows_read == 0 and second.inserted == 0
    with transaction(services.sessions) as session:
        keys = [r.key for r in session.scalars(select(SourceState))]
        runs = list(session.scalars(select(SourceRun).order_by(SourceRun.id)))
    assert len(keys) == 1 and keys[0].startswith("file:")
    assert [r.rows_read for r in runs] == [5, 0]
    assert runs[0].detail["files"]["a.csv"]["encoding"] == "gb18030"


def test_poll_failure_is_recorded(services, tmp_path: Path) -> None:
    with_sources(services, SourceConfig("gone", "file", {"path": str(tmp_path / "missing")}, {}))
    result = poll_source(services, "gone")
    assert not result.ok and not result.retry and "找不到" in result.error
    with transaction(services.sessions) as session:
        (run,) = session.scalars(select(SourceRun))
    assert "找不到" in run.error and run.finished_at is not None


def test_sources_check_writes_nothing(services, tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "a.csv").write_bytes(SYCM_CSV.encode("gbk"))
    with_sources(
        services,
        SourceConfig("shop-reports", "file", {"path": str(folder), "preset": "sycm"}, {}),
        SourceConfig("gone", "file", {"path": str(tmp_path / "missing")}, {}),
    )
    ok, gone = sources_check(services)
    assert ok.source_id == "shop-reports" and ok.samples == len(SYCM_EXPECTED)
    assert ok.metrics["visitors"] == 2 and (ok.first_day, ok.last_day) == ("2026-11-20", "2026-11-21")
    assert not ok.ok and ok.errors[0].line == 7  # a refused row makes the check fail loudly
    assert not gone.ok and "找不到" in gone.error
    for model in (MetricSample, SourceRun, SourceState):
        assert count(services, model) == 0
