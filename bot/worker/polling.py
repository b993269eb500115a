"""Running metric sources: poll one (fetch → upsert → SourceRun), import a file, check every source.

The fetch runs outside any database transaction (it may wait on a platform for seconds);
the samples, the run record and the state the fetch changed (file hashes, refreshed OAuth
tokens, encrypted) are then written in one transaction.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from bot.config import Settings, SourceConfig
from bot.services import Services
from bot.worker.aftersales import read_cases_for, store_fetched_cases
from sources import build
from sources.base import (
    FetchResult,
    MemoryState,
    ProgressFn,
    RowError,
    SourceDeps,
    SourceError,
    Window,
)
from sources.files import ReportOptions, options_from_config, read_report
from sources.presets import GENERIC
from storage.db import transaction
from storage.metrics import finish_run, start_run, upsert_samples
from storage.secrets import Sealer, SecretsUnavailable
from storage.source_state import Cipher, load_state, save_state

log = logging.getLogger(__name__)

DEFAULT_DAYS = 3  # an API source re-reads the last few days: orders get paid, refunded, shipped late
MAX_RUN_ERRORS = 200  # row errors kept in a run's detail


def state_cipher(settings: Settings) -> Cipher | None:
    """The service's Sealer for tokens at rest; None when no ``server.secret_key`` is set."""
    keys = [k.get() for k in settings.secret_keys if k]
    if not keys:
        return None
    try:
        return Sealer(keys)
    except SecretsUnavailable:
        return None


@dataclass
class PollResult:
    source_id: str
    run_id: int | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_refused: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    error: str = ""
    retry: bool = False
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return not self.error


def _source_config(services: Services, source_id: str) -> SourceConfig:
    config = services.settings.source(source_id)
    if config is None:
        known = ", ".join(s.id for s in services.settings.sources) or "（无）"
        raise KeyError(f"没有 id 为 {source_id!r} 的数据源（已配置：{known}）")
    return config


def default_window(settings: Settings, config: SourceConfig, now: datetime) -> Window:
    days = int(config.get("days", DEFAULT_DAYS))
    return Window.last_days(now.astimezone(settings.tz).date(), days)


def _run_detail(result: FetchResult, upserted: Any = None) -> dict[str, Any]:
    detail: dict[str, Any] = {k: v for k, v in result.detail.items() if k != "columns"}
    detail["rows_skipped"] = result.rows_skipped
    detail["row_errors"] = [
        {"file": e.file, "line": e.line, "column": e.column, "reason": e.reason}
        for e in result.errors[:MAX_RUN_ERRORS]
    ]
    if upserted is not None:
        detail.update(
            inserted=upserted.inserted,
            updated=upserted.updated,
            unchanged=upserted.unchanged,
            changes=upserted.changes,
        )
    return detail


def poll_source(
    services: Services,
    source_id: str,
    now: datetime | None = None,
    *,
    window: Window | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: ProgressFn | None = None,
) -> PollResult:
    """Fetch one source and store what it gave; the run is recorded whatever happens."""
    config = _source_config(services, source_id)
    now = now or services.clock()
    window = window or default_window(services.settings, config, now)
    cipher = state_cipher(services.settings)
    with transaction(services.sessions) as session:
        values, secrets = load_state(session, source_id, cipher)
    state = MemoryState(values, secrets)
    deps = SourceDeps(
        http=services.http, state=state, sleep=sleep, timezone=services.settings.timezone, progress=progress
    )
    outcome = PollResult(source_id)
    result = FetchResult()
    try:
        source = build(config, deps)
        result = source.fetch(window, now)
    except SourceError as exc:
        outcome.error, outcome.retry, outcome.retry_after = str(exc), exc.retry, exc.retry_after
    except Exception as exc:  # noqa: BLE001 - a connector bug must not stop the scheduler
        log.exception("source %s failed", source_id)
        outcome.error = f"内部错误：{type(exc).__name__}: {exc}"
        outcome.retry = True
    finished = services.clock()
    with transaction(services.sessions) as session:
        # Tokens refreshed during a failed fetch are kept too: the old refresh token may be spent.
        save_state(
            session,
            source_id,
            finished,
            values={**state.changed, **(result.state if not outcome.error else {})},
            secrets=state.changed_secrets,
            cipher=cipher,
        )
        run = start_run(session, source_id, now)
        upserted = None
        if not outcome.error:
            _refuse_misscaled(session, result, source_id)  # a % column ~100× off its history (issue 16)
            upserted = upsert_samples(session, result.samples, now=finished, actor=f"source:{source_id}")
            outcome.inserted, outcome.updated, outcome.unchanged = (
                upserted.inserted,
                upserted.updated,
                upserted.unchanged,
            )
        detail = _run_detail(result, upserted)
        if result.cases and not outcome.error:
            detail.update(store_fetched_cases(services.settings, session, result.cases, finished))
        detail["window"] = [window.start.isoformat(), window.end.isoformat()]
        if outcome.error:
            detail["retry"] = outcome.retry
            if outcome.retry_after is not None:
                detail["retry_after"] = outcome.retry_after
        finish_run(
            run,
            finished,
            rows_read=result.rows_read,
            rows_loaded=result.rows_loaded if not outcome.error else 0,
            rows_refused=result.rows_refused,
            error=outcome.error,
            detail=detail,
        )
        outcome.run_id = run.id
    outcome.rows_read = result.rows_read
    outcome.rows_loaded = result.rows_loaded if not outcome.error else 0
    outcome.rows_refused = result.rows_refused
    outcome.errors = result.errors
    return outcome


# ---------------------------------------------------------------- planloop import FILE


@dataclass
class ImportReport:
    loaded: int
    refused: int
    errors: list[RowError]
    rows_read: int = 0
    skipped: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None


class ImportOutcome(NamedTuple):
    loaded: int
    refused: int
    errors: list[RowError]


def read_import(
    services: Services,
    path: Path,
    source_id: str | None = None,
    *,
    progress: ProgressFn | None = None,
    label: str | None = None,
) -> tuple[ReportOptions, FetchResult]:
    """The reading half of ``import_file_report``: the file read with the source's preset and
    columns (or the generic long form), every check applied, nothing written (the console's preview)."""
    config = _source_config(services, source_id) if source_id else None
    cases_file = config is not None and config.get("preset") == "aftersales"
    if config is not None and not cases_file:
        options = options_from_config(config)
    else:
        options = ReportOptions(preset=GENERIC, scope="shop", source_id=source_id or "import")
    _known_keys(services, options)
    if config is not None and cases_file:
        return options, read_cases_for(config, path, services.settings.timezone)
    return options, read_report(path, options, services.clock(), progress=progress, label=label)


def preview_import(
    services: Services, path: Path, source_id: str | None = None, *, label: str | None = None
) -> FetchResult:
    """What ``import_file_report`` would store, in a transaction that is rolled back."""
    _, result = read_import(services, path, source_id, label=label)
    with services.sessions() as session:
        _refuse_misscaled(session, result, label or path.name)
        session.rollback()
    return result


def import_file_report(
    services: Services,
    path: str | Path,
    source_id: str | None = None,
    *,
    progress: ProgressFn | None = None,
) -> ImportReport:
    """Read one report file (generic long form, or the named source's preset and columns) and
    store its good rows; every refused row is listed. The run is recorded under the source id
    (``import`` without one)."""
    path = Path(path)
    options, result = read_import(services, path, source_id, progress=progress)
    now = services.clock()
    with transaction(services.sessions) as session:
        _refuse_misscaled(session, result, path.name)
        run = start_run(session, options.source_id, now)
        upserted = upsert_samples(session, result.samples, now=now, actor=f"import:{path.name}")
        detail = _run_detail(result, upserted)
        if result.cases:
            detail.update(store_fetched_cases(services.settings, session, result.cases, now))
            result.detail["unmapped_reasons"] = detail["unmapped_reasons"]
        detail["file"] = str(path)
        refused_file = result.detail.get("refused")
        finish_run(
            run,
            services.clock(),
            rows_read=result.rows_read,
            rows_loaded=result.rows_loaded,
            rows_refused=result.rows_refused,
            error=str(result.errors[0]) if refused_file else "",
            detail=detail,
        )
        run_id = run.id
    return ImportReport(
        loaded=result.rows_loaded,
        refused=result.rows_refused,
        errors=result.errors,
        rows_read=result.rows_read,
        skipped=result.rows_skipped,
        inserted=upserted.inserted,
        updated=upserted.updated,
        unchanged=upserted.unchanged,
        detail=result.detail,
        run_id=run_id,
    )


LONG_FORM = ("date", "metric", "value", "scope")


def import_samples(
    services: Services, rows: Sequence[Sequence[object]], *, source_id: str, label: str, actor: str
) -> tuple[FetchResult, Any]:
    """Long-form rows ``(date, metric, value, scope)`` held in memory (the API's ``POST /metrics``),
    read with exactly the file import's rules and stored like a file: row *n* is line *n + 1*
    (line 1 is the header). Returns the read result (samples, row errors) and the upsert counts."""
    from sources.files import Table, samples_from_table

    options = ReportOptions(preset=GENERIC, scope="shop", source_id=source_id)
    _known_keys(services, options)
    now = services.clock()
    lines: list[tuple[int, list[object]]] = [(1, list(LONG_FORM))]
    lines += [(n, list(row)) for n, row in enumerate(rows, start=2)]
    result = samples_from_table(Table(kind="json", rows=iter(lines)), options, label, now)
    with transaction(services.sessions) as session:
        _refuse_misscaled(session, result, label)
        run = start_run(session, source_id, now)
        upserted = upsert_samples(session, result.samples, now=now, actor=actor)
        finish_run(
            run,
            services.clock(),
            rows_read=result.rows_read,
            rows_loaded=len(result.samples),
            rows_refused=result.rows_refused,
            error="",
            detail=_run_detail(result, upserted),
        )
    return result, upserted


HISTORY_DAYS = 28  # the history a percent column is compared with


def _refuse_misscaled(session: Any, result: Any, label: str) -> None:
    """Drop the samples of a % KPI's column whose values are ~100× off that metric's history, with
    one error naming the column and the likely cause (sources/scale.py)."""
    from datetime import timedelta

    from sqlalchemy import select

    from sources.base import RowError
    from sources.scale import hundredfold
    from storage.models import Kpi, MetricSample

    percent = set(session.scalars(select(Kpi.metric).where(Kpi.unit == "%", Kpi.metric.is_not(None))))
    new: dict[tuple[str, str], list[Decimal]] = {}
    first: dict[tuple[str, str], date] = {}
    for s in result.samples:
        if s.metric in percent:
            key = (s.metric, s.scope)
            new.setdefault(key, []).append(s.value)
            first[key] = min(first.get(key, s.date), s.date)
    if not new:
        return
    history: dict[tuple[str, str], list[Decimal]] = {}
    for (metric, scope), day in first.items():
        history[(metric, scope)] = list(
            session.scalars(
                select(MetricSample.value).where(
                    MetricSample.metric == metric,
                    MetricSample.scope == scope,
                    MetricSample.day < day,
                    MetricSample.day >= day - timedelta(days=HISTORY_DAYS),
                )
            )
        )
    bad = hundredfold(new, history)
    if not bad:
        return
    columns = {m: h for h, m in (result.detail.get("columns") or {}).items()}
    dropped = {(b.metric, b.scope) for b in bad}
    result.samples = [s for s in result.samples if (s.metric, s.scope) not in dropped]
    for b in bad:
        result.errors.append(
            RowError(label, 0, columns.get(b.metric, b.metric), b.reason(columns.get(b.metric, b.metric)))
        )
    result.detail["misscaled"] = sorted(f"{b.metric}@{b.scope}" for b in bad)


def _known_keys(services: Services, options: ReportOptions) -> None:
    """Long-form rows may name only metric keys a KPI, a preset or a source's ``columns`` knows."""
    from sqlalchemy import select

    from sources.presets import known_metrics
    from storage.models import Kpi

    with services.sessions() as session:
        kpis = {k: m for k, m in session.execute(select(Kpi.key, Kpi.metric)) if m}
    columns = [v for s in services.settings.sources for v in (s.get("columns") or {}).values()]
    options.known = known_metrics([*kpis.values(), *columns])
    options.kpi_metrics = {k: m for k, m in kpis.items() if k != m}


def import_file(
    services: Services, path: str | Path, source_id: str | None = None, *, progress: ProgressFn | None = None
) -> ImportOutcome:
    """``planloop import FILE [--source NAME]``: (rows loaded, rows refused, row errors)."""
    report = import_file_report(services, path, source_id, progress=progress)
    return ImportOutcome(report.loaded, report.refused, report.errors)


# ---------------------------------------------------------------- planloop sources check


@dataclass
class CheckResult:
    source_id: str
    kind: str
    ok: bool
    rows_read: int = 0
    rows_refused: int = 0
    samples: int = 0
    metrics: dict[str, int] = field(default_factory=dict)  # metric → samples it would load
    first_day: str = ""
    last_day: str = ""
    errors: list[RowError] = field(default_factory=list)
    error: str = ""


def sources_check(
    services: Services,
    now: datetime | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[CheckResult]:
    """Try every configured source once and say what it would load, writing no samples, runs or
    file hashes. Only refreshed OAuth tokens are kept: a platform may have spent the old ones."""
    now = now or services.clock()
    cipher = state_cipher(services.settings)
    out: list[CheckResult] = []
    for config in services.settings.sources:
        with transaction(services.sessions) as session:
            values, secrets = load_state(session, config.id, cipher)
        state = MemoryState(values, secrets)
        deps = SourceDeps(http=services.http, state=state, sleep=sleep, timezone=services.settings.timezone)
        check = CheckResult(config.id, config.kind, ok=True)
        try:
            result = build(config, deps).fetch(default_window(services.settings, config, now), now)
        except SourceError as exc:
            check.ok, check.error = False, str(exc)
        except Exception as exc:  # noqa: BLE001
            log.exception("source check %s failed", config.id)
            check.ok, check.error = False, f"内部错误：{type(exc).__name__}: {exc}"
        else:
            days = sorted({s.date for s in result.samples})
            check.rows_read, check.rows_refused = result.rows_read, result.rows_refused
            check.samples = len(result.samples)
            check.metrics = dict(Counter(s.metric for s in result.samples))
            if result.cases:
                check.metrics["售后单"] = len(result.cases)  # stored as cases; metrics computed from them
            check.first_day = days[0].isoformat() if days else ""
            check.last_day = days[-1].isoformat() if days else ""
            check.errors = result.errors
            check.ok = not result.errors
        if state.changed_secrets:
            with transaction(services.sessions) as session:
                save_state(session, config.id, services.clock(), secrets=state.changed_secrets, cipher=cipher)
        out.append(check)
    return out
