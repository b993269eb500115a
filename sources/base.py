"""The one face of every metric connector: samples, row errors, fetch results, errors, state seam."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import requests

# The metric keys CONTRACT.md lists; presets only produce these, custom mappings may add more.
METRIC_KEYS = (
    "visitors",
    "page_views",
    "pay_amount",
    "pay_buyers",
    "pay_conversion_rate",
    "avg_order_value",
    "refund_amount",
    "refund_rate",
    "complaint_rate",
    "bounce_rate",
    "ctr",
    "activity_sales",
    "inquiry_conversion_rate",
    "first_response_seconds",
    "avg_response_seconds",
    "ship_within_24h_rate",
    "mis_shipment_rate",
    "inventory_turnover_days",
    "satisfaction_rate",
    "complaints",
    "complaint_resolution_rate",
    "complaint_handling_hours",
)


@dataclass(frozen=True)
class MetricSample:
    """One day's value of one metric for one scope (a shop, SKU, activity or person), in its own unit."""

    metric: str
    scope: str
    date: date
    value: Decimal
    source: str
    fetched_at: datetime


@dataclass(frozen=True)
class RowError:
    """A refused row: which file, which physical line (1-based; 0 = the file as a whole), which column, why."""

    file: str
    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f" 第 {self.line} 行"
        if self.column:
            where += f"「{self.column}」列"
        return f"{where}：{self.reason}"


@dataclass
class FetchResult:
    """What one fetch produced. ``rows_read`` counts data rows (file rows, API records) looked at;
    ``rows_refused`` counts rows with at least one error; ``state`` holds state changes that the
    caller must persist together with the samples (file hashes seen); ``detail`` is for the admin."""

    samples: list[MetricSample] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows_read: int = 0
    rows_refused: int = 0
    rows_skipped: int = 0  # totals rows, notes, blank rows: read, neither loaded nor refused
    state: dict[str, str] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    cases: list[Any] = field(default_factory=list)  # sources.cases.Case: after-sales cases to store

    @property
    def rows_loaded(self) -> int:
        return self.rows_read - self.rows_refused - self.rows_skipped

    def extend(self, other: FetchResult) -> None:
        self.samples.extend(other.samples)
        self.errors.extend(other.errors)
        self.rows_read += other.rows_read
        self.rows_refused += other.rows_refused
        self.rows_skipped += other.rows_skipped
        self.state.update(other.state)
        self.cases.extend(other.cases)

    def add_row(
        self,
        where: tuple[str, int],
        scope: str,
        day: date | None,
        cells: Iterable[tuple[str, str, object]],
        errors: list[RowError],
        source: str,
        now: datetime,
    ) -> None:
        """One data row at ``where`` (file, line): parse each (column, metric, raw) cell. A row with any
        error is refused whole (the caller may pass errors found already), one with no value is skipped."""
        from sources.values import ValueParseError, parse_value

        samples = []
        for column, metric, raw in cells:
            try:
                value = parse_value(raw)
            except ValueParseError as exc:
                errors.append(RowError(where[0], where[1], column, str(exc)))
                continue
            if value is not None and day is not None:
                samples.append(MetricSample(metric, scope, day, value, source, now))
        if errors:
            self.rows_refused += 1
            self.errors.extend(errors)
        elif not samples:
            self.rows_skipped += 1
        else:
            self.samples.extend(samples)


@dataclass(frozen=True)
class Window:
    """The days to fetch, both ends inclusive, in the team's timezone."""

    start: date
    end: date

    def days(self) -> Iterator[date]:
        day = self.start
        while day <= self.end:
            yield day
            day += timedelta(days=1)

    @classmethod
    def last_days(cls, today: date, days: int) -> Window:
        return cls(today - timedelta(days=max(days, 1) - 1), today)


class SourceError(Exception):
    """A fetch that failed as a whole. ``retry``: try again later (after ``retry_after`` seconds if
    known); otherwise the admin must act. ``code``/``platform_message`` keep what the platform said."""

    retry = False

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        platform_message: str = "",
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.platform_message = platform_message
        self.retry_after = retry_after

    def __str__(self) -> str:
        text = self.message
        if self.code or self.platform_message:
            text += f"（平台返回 {self.code}：{self.platform_message}）"
        return text


class RetryLater(SourceError):
    """Rate limit, system busy, timeout: nothing is wrong with the setup; the next poll may work."""

    retry = True


class NeedsAdmin(SourceError):
    """Expired or revoked authorisation, missing permission, bad configuration: a person must act."""

    retry = False


class SourceConfigLike(Protocol):
    """The shape of ``bot.config.SourceConfig`` (sources/ sits below bot/ and must not import it)."""

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    def get(self, key: str, default: Any = None) -> Any: ...

    def secret(self, key: str) -> str: ...


class State(Protocol):
    """Per-source state kept between polls. Secrets (OAuth tokens) go through ``get_secret``/
    ``set_secret`` so the caller can encrypt them at rest; sources never see how they are stored."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...

    def get_secret(self, key: str) -> str | None: ...

    def set_secret(self, key: str, value: str) -> None: ...


class MemoryState:
    """A State held in memory: loaded from storage before a fetch, its ``changes`` written after."""

    def __init__(
        self, values: Mapping[str, str] | None = None, secrets: Mapping[str, str] | None = None
    ) -> None:
        self.values: MutableMapping[str, str] = dict(values or {})
        self.secrets: MutableMapping[str, str] = dict(secrets or {})
        self.changed: dict[str, str] = {}
        self.changed_secrets: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set(self, key: str, value: str) -> None:
        self.values[key] = value
        self.changed[key] = value

    def get_secret(self, key: str) -> str | None:
        return self.secrets.get(key)

    def set_secret(self, key: str, value: str) -> None:
        self.secrets[key] = value
        self.changed_secrets[key] = value


ProgressFn = Callable[[int, int], None]  # (done, total) in bytes


@dataclass
class SourceDeps:
    """What a connector may use: HTTP (tests point bases at fakes), state, sleep, progress."""

    http: requests.Session = field(default_factory=requests.Session)
    state: State = field(default_factory=MemoryState)
    sleep: Callable[[float], None] = time.sleep
    timezone: str = "Asia/Shanghai"
    progress: ProgressFn | None = None


class Source(Protocol):
    """Every connector: ``fetch`` the window's samples; raise RetryLater / NeedsAdmin on failure."""

    id: str
    kind: str

    def fetch(self, window: Window, now: datetime) -> FetchResult: ...
