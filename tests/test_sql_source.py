"""kind = "sql": a read-only SELECT against a team's own database, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from bot.config import Secret, SourceConfig
from sources import build
from sources.base import NeedsAdmin, RetryLater, SourceDeps, Window
from sources.sql import check_query
from tests.conftest import _databases, _pg_engine

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
WINDOW = Window(date(2026, 11, 21), date(2026, 11, 22))
ROWS = [
    ("2026-11-20", "旗舰店", 100, "1.0%"),
    ("2026-11-21", "旗舰店", 12000.5, "3.10%"),
    ("2026-11-22", "旗舰店", 9000, None),
    ("2026-11-22", "二店", -1, "oops"),
]


@pytest.fixture(params=_databases())
def team_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """The team's own database (a fresh one per test), with a daily KPI table."""
    pg = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'erp.db'}"
        engine = create_engine(url)
    else:
        pg = _pg_engine()
        engine = next(pg)
        url = engine.url.render_as_string(hide_password=False)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS daily_kpi"))
        conn.execute(
            text("CREATE TABLE daily_kpi (day DATE, shop VARCHAR(20), gmv NUMERIC, cvr VARCHAR(10))")
        )
        for row in ROWS:
            conn.execute(
                text("INSERT INTO daily_kpi VALUES (:d, :s, :g, :c)"), dict(zip("dsgc", row, strict=True))
            )
    yield url, engine
    engine.dispose()
    if pg is not None:
        next(pg, None)


def sql_source(url: str, **values: Any):
    vals: dict[str, Any] = {
        "query": "SELECT day, shop, gmv, cvr FROM daily_kpi WHERE day BETWEEN :start AND :end ORDER BY day, gmv DESC",
        "date_column": "day",
        "scope_column": "shop",
        "columns": {"gmv": "pay_amount", "cvr": "pay_conversion_rate"},
    }
    vals.update(values)
    return build(SourceConfig("erp-db", "sql", vals, {"url_secret": Secret(url)}), SourceDeps())


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM daily_kpi")).scalar_one())


def test_reads_mapped_columns_with_bound_window(team_db: tuple[str, Engine]) -> None:
    url, _ = team_db
    r = sql_source(url).fetch(WINDOW, NOW)
    assert {(s.metric, s.scope, s.date): s.value for s in r.samples} == {
        ("pay_amount", "旗舰店", date(2026, 11, 21)): Decimal("12000.5"),
        ("pay_conversion_rate", "旗舰店", date(2026, 11, 21)): Decimal("3.10"),
        ("pay_amount", "旗舰店", date(2026, 11, 22)): Decimal("9000"),
    }
    assert [(e.line, e.column) for e in r.errors] == [(3, "cvr")]  # 二店's "oops"
    assert r.rows_read == 3 and r.rows_refused == 1


def test_writable_cte_is_stopped_by_the_database(team_db: tuple[str, Engine]) -> None:
    url, engine = team_db
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no writable CTEs; its query_only is tested below")
    q = "WITH gone AS (DELETE FROM daily_kpi RETURNING day) SELECT day, 1 AS gmv FROM gone"
    with pytest.raises(NeedsAdmin, match="read-only"):
        sql_source(url, query=q, scope_column="", columns={"gmv": "pay_amount"}).fetch(WINDOW, NOW)
    assert count(engine) == len(ROWS)


def test_sqlite_connection_is_query_only(team_db: tuple[str, Engine]) -> None:
    url, engine = team_db
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    src = sql_source(url)
    with src._engine().connect() as conn, pytest.raises(Exception, match="readonly"):
        conn.execute(text("DELETE FROM daily_kpi"))
    assert count(engine) == len(ROWS)


def test_statement_timeout(team_db: tuple[str, Engine]) -> None:
    url, engine = team_db
    if engine.dialect.name == "postgresql":
        q = "SELECT day, gmv FROM daily_kpi, pg_sleep(2) WHERE day BETWEEN :start AND :end"
    else:  # a recursive count to 50 million takes far longer than the timeout
        q = (
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000000) "
            "SELECT '2026-11-22' AS day, max(i) AS gmv FROM n"
        )
    with pytest.raises(RetryLater, match="0.3"):
        sql_source(url, query=q, scope_column="", columns={"gmv": "pay_amount"}, timeout=0.3).fetch(
            WINDOW, NOW
        )


def test_row_cap(team_db: tuple[str, Engine]) -> None:
    url, _ = team_db
    with pytest.raises(NeedsAdmin, match="超过 1 行"):
        sql_source(url, max_rows=1).fetch(WINDOW, NOW)


def test_missing_columns(team_db: tuple[str, Engine]) -> None:
    url, _ = team_db
    with pytest.raises(NeedsAdmin, match="缺少列：uv"):
        sql_source(url, columns={"uv": "visitors"}).fetch(WINDOW, NOW)


def test_long_form(team_db: tuple[str, Engine]) -> None:
    url, _ = team_db
    q = "SELECT day, 'refund_rate' AS metric, gmv AS value FROM daily_kpi WHERE day = :end AND shop = '旗舰店'"
    r = sql_source(url, query=q, columns={}, scope_column="", metric_column="metric").fetch(WINDOW, NOW)
    assert [(s.metric, s.date, s.value) for s in r.samples] == [
        ("refund_rate", date(2026, 11, 22), Decimal("9000"))
    ]


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM daily_kpi",
        "SELECT 1; DROP TABLE daily_kpi",
        "UPDATE daily_kpi SET gmv = 0",
        "/* SELECT */ DROP TABLE x",
        "",
    ],
)
def test_only_one_select_statement(query: str) -> None:
    with pytest.raises(NeedsAdmin):
        check_query(query)


@pytest.mark.parametrize(
    "query",
    ["SELECT 1;", "  with a as (select 1) select * from a", "SELECT ';' AS semi", "-- note\nSELECT 1"],
)
def test_select_statements_pass(query: str) -> None:
    assert check_query(query)


def test_unsupported_database_needs_admin() -> None:
    with pytest.raises(NeedsAdmin, match="只支持"):
        build(
            SourceConfig(
                "x", "sql", {"url": "oracle://u@h/db", "query": "SELECT 1", "columns": {"a": "ctr"}}, {}
            )
        )
