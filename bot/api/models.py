"""The open API's pydantic models: they validate requests, shape responses and are the document.

Response models mirror the exports (CONTRACT.md "Export"), so a script can move between
``planloop export … --format json`` and the API; the export's later additions pass through
(``extra="allow"``) without a change here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from handlers.workdays import parse_week

WEEK = r"^(20\d\d|2100)-W(0[1-9]|[1-4]\d|5[0-3])$"
YEARS = range(2000, 2101)


def _real_week(text: str) -> str:
    year, _ = parse_week(text)  # ValueError: "2026-W53" in a 52-week year
    if year not in YEARS:
        raise ValueError(f"{year} is outside {YEARS.start}–{YEARS.stop - 1}")
    return text


Week = Annotated[str, Field(pattern=WEEK, description="ISO week, e.g. 2026-W49"), AfterValidator(_real_week)]
MAX_SAMPLES = 10_000
MAX_PAGE = 500


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# ---------------------------------------------------------------- parameters


class ListQuery(BaseModel):
    limit: int = Field(100, ge=1, le=MAX_PAGE, description="at most this many entries")
    cursor: str | None = Field(None, max_length=200, description="next_cursor of the previous page")


class WeekQuery(ListQuery):
    week: Week
    team: str | None = Field(None, max_length=64)


class PlansQuery(WeekQuery):
    employee: str | None = Field(None, max_length=64)


class WriteHeaders(BaseModel):
    idempotency_key: str | None = Field(
        None,
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="a retry with the same key and body gets the first answer",
    )


# ---------------------------------------------------------------- catalog


class TeamOut(BaseModel):
    id: str
    name: str
    leader: str | None
    timezone: str
    active: bool


class TeamList(BaseModel):
    teams: list[TeamOut]
    next_cursor: str | None = None


class PersonOut(BaseModel):
    id: str
    name: str
    team: str
    role: str
    type: str
    active: bool


class PeopleList(BaseModel):
    people: list[PersonOut]
    next_cursor: str | None = None


class KpiOut(BaseModel):
    key: str
    name: str
    unit: str
    direction: str
    metric: str | None
    kind: str
    scope: str


class KpiList(BaseModel):
    kpis: list[KpiOut]
    next_cursor: str | None = None


class TemplateVersionOut(BaseModel):
    version: int
    reason: str
    entry: dict[str, Any]


class TemplateOut(BaseModel):
    id: str
    name: str
    role: str | None
    period: str | None
    scenario: str | None
    employee_type: str | None
    active: bool
    spec: dict[str, Any]
    versions: list[TemplateVersionOut]


class TemplateList(BaseModel):
    templates: list[TemplateOut]
    next_cursor: str | None = None


class PeriodOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    name: str
    start: str = Field(alias="from", description="month-day, e.g. 10-20")
    end: str = Field(alias="to")


class PeriodList(BaseModel):
    periods: list[PeriodOut]
    next_cursor: str | None = None


class ScenarioOut(BaseModel):
    id: str
    name: str
    active: bool


class ScenarioList(BaseModel):
    scenarios: list[ScenarioOut]
    next_cursor: str | None = None


# ---------------------------------------------------------------- exports


class PlanItemOut(Open):
    text: str
    kpi: str
    scope: str
    baseline: float | None
    target: float | None
    actual: float | None
    progress: float | None
    lagging: bool


class PlanOut(Open):
    employee: str
    team: str
    active: bool
    status: str
    submitted_at: str | None
    version: int
    items: list[PlanItemOut]


class PlansPage(Open):
    week: str
    plans: list[PlanOut]
    next_cursor: str | None = None


class ProgressItemOut(Open):
    text: str
    kpi: str
    scope: str
    baseline: float | None
    target: float | None
    actual: float | None
    actual_date: str | None
    progress: float | None
    expected_pace: float | None
    status: str
    lagging: bool


class ProgressEntry(Open):
    employee: str
    team: str
    active: bool
    items: list[ProgressItemOut]


class ProgressPage(Open):
    week: str
    as_of: str
    progress: list[ProgressEntry]
    next_cursor: str | None = None


class AppraisalItemOut(Open):
    kpi: str
    weight: float | None = None
    baseline: float | None = None
    target: float | None = None
    actual: float | None = None
    completion: float | None = None
    contribution: float | None = None


class AppraisalOut(Open):
    employee: str
    team: str
    week: str
    version: int
    template: str
    template_reason: str
    score: float
    grade: str
    items: list[AppraisalItemOut]


class AppraisalsPage(Open):
    week: str
    appraisals: list[AppraisalOut]
    next_cursor: str | None = None


# ---------------------------------------------------------------- writes


class SampleIn(BaseModel):
    date: str = Field(max_length=40, description="2026-11-22 (the forms a report file may use)")
    metric: str = Field(max_length=64, description="a metric key, e.g. pay_conversion_rate")
    value: int | float | str | None = Field(
        description='in the metric\'s unit; a string may carry "%" or thousands separators'
    )
    scope: str | None = Field(None, max_length=200, description="default: shop")


class MetricsIn(BaseModel):
    samples: list[SampleIn] = Field(min_length=1, max_length=MAX_SAMPLES)


class Rejected(BaseModel):
    index: int
    error: str


class MetricsOut(BaseModel):
    inserted: int
    updated: int
    unchanged: int
    rejected: list[Rejected]


class PlanItemIn(BaseModel):
    text: str = Field(max_length=500)
    kpi: str = Field(max_length=64, description="the KPI's key or name")
    target: str = Field("", max_length=32, description="as in chat: +2pp, +2%, -10%, +0.5, =3.5")
    scope: str | None = Field(None, max_length=200)


class PlanIn(BaseModel):
    employee: str = Field(max_length=64)
    week: Week | None = Field(None, description="default and only allowed: this week")
    items: list[PlanItemIn] = Field(max_length=50)


class PlanSaved(BaseModel):
    week: str
    created: bool = Field(description="false: the current version already said the same")
    note: str
    plan: PlanOut


class SwitchIn(BaseModel):
    team: str = Field(max_length=64)
    to: str = Field(max_length=64, description="the template id")
    until: str | None = Field(None, max_length=20, description="last day, inclusive: 2026-12-01 or 12-01")
    reason: str | None = Field(None, max_length=200, description="kept in the audit log")


class SwitchPath(BaseModel):
    switch_id: int = Field(ge=1, le=2**31 - 1)


class SwitchOut(BaseModel):
    id: int
    team: str
    template: str
    start: str
    until: str | None
    by: str
    cancelled: bool


class ScenarioPath(BaseModel):
    scenario_id: str = Field(max_length=64)


class ScenarioPatch(BaseModel):
    active: bool


def _known_event(name: str) -> str:
    from bot.config_schema import WEBHOOK_EVENTS

    if name not in WEBHOOK_EVENTS:
        raise ValueError(f"unknown event (expected one of {', '.join(WEBHOOK_EVENTS)})")
    return name


WebhookEvent = Annotated[str, Field(max_length=40), AfterValidator(_known_event)]


class WebhookIn(BaseModel):
    url: str = Field(max_length=2000, description="http(s) address each event is POSTed to")
    secret: str = Field(min_length=16, max_length=200, description="signs each delivery (Planloop-Signature)")
    events: list[WebhookEvent] = Field(
        default_factory=list, max_length=8, description="the events sent; empty: all of them"
    )
    allow_private: bool = Field(False, description="allow a receiver inside the network")


class WebhookPath(BaseModel):
    webhook_id: str = Field(max_length=40)


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    allow_private: bool
    source: Literal["api", "config"]
    created_at: str | None = None


class WebhookList(BaseModel):
    webhooks: list[WebhookOut]


class KpiPath(BaseModel):
    key: str = Field(max_length=64)


class KpiIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="what people read, e.g. 支付转化率")
    unit: str = Field("", max_length=16)
    direction: Literal["up", "down"] = Field("up", description="which way is better")
    kind: Literal["metric", "rating", "checklist"] = "metric"
    metric: str | None = Field(None, max_length=64, description="the metric key a source fills (metric KPIs)")
    scope: str = Field("shop", max_length=200)


class TemplatePath(BaseModel):
    template_id: str = Field(max_length=64)


class TemplateIn(BaseModel):
    """A ``[[templates]]`` entry of the team file, as JSON (the id is in the path)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    role: str | None = Field(None, max_length=64)
    period: str | None = Field(None, max_length=64)
    scenario: str | None = Field(None, max_length=64)
    employee_type: Literal["new", "veteran"] | None = None
    weights: dict[str, float] = Field(description="KPI key → points; they sum to 100")
    cap: float | None = Field(None, description="% a single KPI's completion may reach")
    grades: dict[str, float] | None = Field(None, description="grade → lower bound")
    curves: dict[str, Any] | None = None
    allow_negative: bool | None = None
    ratings: dict[str, Any] | None = None
    adjustments: list[dict[str, Any]] | None = Field(None, max_length=50)


class TemplateWritten(BaseModel):
    template: TemplateOut
    version: int = Field(description="the template version now in force")
