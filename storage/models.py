"""SQLAlchemy 2.x typed models: teams, people, KPIs, plans, metric samples, appraisals, outbox, jobs, audit."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Values are exact decimals in the KPI's own unit (3.05 % is 3.05). 24 digits, 8 after the point.
Value = Numeric(24, 8, asdecimal=True)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every database (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    leader_id: Mapped[str | None] = mapped_column(String(64))
    chat_bot: Mapped[str | None] = mapped_column(String(64))
    chat_id: Mapped[str | None] = mapped_column(String(200))
    webhook_enc: Mapped[str | None] = mapped_column(Text)  # group robot URL, encrypted at rest
    webhook_secret_enc: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    lag_margin: Mapped[int] = mapped_column(Integer, default=20)  # percentage points
    kpi_keys: Mapped[list[Any] | None] = mapped_column(JSON)  # None: every KPI
    plan_day_time: Mapped[str] = mapped_column(String(5), default="10:00")
    plan_deadline_time: Mapped[str] = mapped_column(String(5), default="14:00")
    reminders_paused_until: Mapped[date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # chat = { …, allow_private = true }: the group robot may sit inside the network (docs/security.md)
    webhook_allow_private: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Role(Base):
    __tablename__ = "roles"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # [{"section": "活动策划", "kpi": "activity_sales"}, ...]; promo_sections apply inside a period
    sections: Mapped[list[Any]] = mapped_column(default=list)
    promo_sections: Mapped[list[Any]] = mapped_column(default=list)


class Person(Base):
    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"))
    role: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16), default="veteran")  # new | veteran
    hire_date: Mapped[date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    on_leave_until: Mapped[date | None] = mapped_column(Date)
    reminders_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    welcomed_at: Mapped[datetime | None]  # when the bot first greeted them (their first message)
    added_from: Mapped[str | None] = mapped_column(String(16))  # None: a team file; directory | console

    team: Mapped[Team] = relationship(lazy="joined")
    identities: Mapped[list[Identity]] = relationship(back_populates="person", cascade="all, delete-orphan")


class Identity(Base):
    """A person's id on one bot (Feishu open_id, DingTalk staffId, WeCom userid, simulator id)."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("bot_id", "person_id"),)

    bot_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"))

    person: Mapped[Person] = relationship(back_populates="identities")


class DirectoryMember(Base):
    """One member of a bot's organisation directory as its last pull listed them (issue 22)."""

    __tablename__ = "directory_members"

    bot_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), primary_key=True)  # the id the bot messages
    union_id: Mapped[str | None] = mapped_column(String(200))  # DingTalk's unionId (its OAuth's id)
    name: Mapped[str] = mapped_column(String(200))
    departments: Mapped[list[Any]] = mapped_column(default=list)  # department names
    active: Mapped[bool] = mapped_column(Boolean)  # False: resigned or disabled on the platform
    seen_at: Mapped[datetime]


class Kpi(Base):
    __tablename__ = "kpis"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(16), default="")
    direction: Mapped[str] = mapped_column(String(4), default="up")  # up | down
    metric: Mapped[str | None] = mapped_column(String(64))  # None for rating / checklist KPIs
    kind: Mapped[str] = mapped_column(String(16), default="metric")  # metric | rating | checklist
    scope: Mapped[str] = mapped_column(String(200), default="shop")


class Template(Base):
    """An appraisal template: weights per KPI, cap, grade bands, optional curves and when it applies."""

    __tablename__ = "templates"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str | None] = mapped_column(String(64))
    period: Mapped[str | None] = mapped_column(String(64))
    scenario: Mapped[str | None] = mapped_column(String(64))
    employee_type: Mapped[str | None] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)  # weights, cap, grades, curves, bonus, ...
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Period(Base):
    __tablename__ = "periods"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    start_md: Mapped[str] = mapped_column(String(5))  # "10-20"
    end_md: Mapped[str] = mapped_column(String(5))


class Scenario(Base):
    __tablename__ = "scenarios"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=False)


class CalendarDay(Base):
    """An override of the built-in Chinese workday calendar (调休 Saturday, extra day off)."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    workday: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(200), default="")


class TemplateSwitch(Base):
    """A leader's manual switch of a team's template, until a date (inclusive)."""

    __tablename__ = "template_switches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"))
    template_id: Mapped[str] = mapped_column(ForeignKey("templates.id"))
    start: Mapped[date] = mapped_column(Date)
    until: Mapped[date | None] = mapped_column(Date)
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)


class Plan(Base):
    """One version of a person's plan for one ISO week; the newest version is ``current``."""

    __tablename__ = "plans"
    __table_args__ = (
        UniqueConstraint("person_id", "week", "version"),
        Index("ix_plans_week_current", "week", "current"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"))
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"))
    week: Mapped[str] = mapped_column(String(8))  # "2026-W48"
    version: Mapped[int] = mapped_column(Integer, default=1)
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    submitted_at: Mapped[datetime]
    submitted_via: Mapped[str] = mapped_column(String(32), default="")
    unlocked: Mapped[bool] = mapped_column(Boolean, default=False)  # leader allowed a late edit

    items: Mapped[list[PlanItem]] = relationship(
        back_populates="plan", cascade="all, delete-orphan", order_by="PlanItem.position"
    )
    person: Mapped[Person] = relationship()


class PlanItem(Base):
    __tablename__ = "plan_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    section: Mapped[str] = mapped_column(String(64), default="")
    text: Mapped[str] = mapped_column(String(500))
    kpi_key: Mapped[str] = mapped_column(ForeignKey("kpis.key"))
    scope: Mapped[str] = mapped_column(String(200), default="shop")
    target_text: Mapped[str] = mapped_column(String(32))
    baseline: Mapped[Decimal | None] = mapped_column(Value)
    target: Mapped[Decimal | None] = mapped_column(Value)
    changes: Mapped[str] = mapped_column(Text, default="")  # what was actually changed (调整了标题 …)
    causes: Mapped[list[Any]] = mapped_column(default=list)  # complaint causes addressed (物流延迟 …)
    note: Mapped[str] = mapped_column(Text, default="")  # the employee's progress note

    plan: Mapped[Plan] = relationship(back_populates="items")


class MetricSample(Base):
    __tablename__ = "metric_samples"

    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    value: Mapped[Decimal] = mapped_column(Value)
    source: Mapped[str] = mapped_column(String(64), default="")
    fetched_at: Mapped[datetime]


class SourceRun(Base):
    __tablename__ = "source_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_id: Mapped[str] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_loaded: Mapped[int] = mapped_column(Integer, default=0)
    rows_refused: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SourceState(Base):
    """Per-source state kept between polls: file hashes seen, OAuth tokens (encrypted), backoff."""

    __tablename__ = "source_state"

    source_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class Appraisal(Base):
    """A frozen appraisal result; a recompute adds a version, never edits one."""

    __tablename__ = "appraisals"
    __table_args__ = (UniqueConstraint("person_id", "week", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"))
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id"))
    week: Mapped[str] = mapped_column(String(8), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    template_id: Mapped[str] = mapped_column(String(64))
    template_reason: Mapped[str] = mapped_column(Text)
    score: Mapped[Decimal] = mapped_column(Value)
    grade: Mapped[str] = mapped_column(String(2))
    items: Mapped[list[Any]] = mapped_column(default=list)
    flags: Mapped[list[Any]] = mapped_column(default=list)
    version_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    # issue 16: published | held (data missing, not sent); the rules in force for the run
    status: Mapped[str] = mapped_column(String(16), default="published", server_default="published")
    rules: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class TemplateVersion(Base):
    """Each edit of a template is a new version (issue 16); a run uses the version in force that week."""

    __tablename__ = "template_versions"

    template_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the team file's entry as parsed
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class Leave(Base):
    """A leave with its first and last day (issue 16); a week counts only leave overlapping it."""

    __tablename__ = "leaves"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), index=True)
    start: Mapped[date] = mapped_column(Date)
    until: Mapped[date] = mapped_column(Date)
    by: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime]


class Rating(Base):
    """Non-metric KPI input: a leader's 1–5 rating or a checklist's done/planned counts."""

    __tablename__ = "ratings"

    person_id: Mapped[str] = mapped_column(ForeignKey("people.id"), primary_key=True)
    week: Mapped[str] = mapped_column(String(8), primary_key=True)
    kpi_key: Mapped[str] = mapped_column(ForeignKey("kpis.key"), primary_key=True)
    stars: Mapped[int | None] = mapped_column(Integer)
    done: Mapped[int | None] = mapped_column(Integer)
    planned: Mapped[int | None] = mapped_column(Integer)
    by: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime]


class Appeal(Base):
    __tablename__ = "appeals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    appraisal_id: Mapped[int] = mapped_column(ForeignKey("appraisals.id"))
    kpi_key: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | accepted | rejected
    reply: Mapped[str] = mapped_column(Text, default="")
    corrected_value: Mapped[Decimal | None] = mapped_column(Value)
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]


class InboundEvent(Base):
    """Event ids already handled; a platform retry with the same id stops here."""

    __tablename__ = "inbound_events"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)  # "<bot_id>:<event id>"
    received_at: Mapped[datetime] = mapped_column(index=True)


class SignedCallback(Base):
    """A callback signature that signs no body (DingTalk robot: timestamp + sign) bound to the first
    message id it came with, until the signature window closes (storage/replay.py)."""

    __tablename__ = "signed_callbacks"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # "<bot_id>:<sha256 of the pair>"
    message_id: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(index=True)


class OutboxMessage(Base):
    """One outbound message, written in the transaction that caused it; the relay delivers it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid4; Feishu's idempotency uuid
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    bot_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))  # chat | user | webhook | update
    target: Mapped[str] = mapped_column(String(300))
    card: Mapped[dict[str, Any]]
    reply_handle: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    platform_message_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    # parts of a multi-part message (WeCom splits long cards) the platform accepted: a retry,
    # in this process or after a restart, resumes at the next part
    parts_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # set just before a send the platform would show twice (a group robot): a row claimed again
    # with it still set was interrupted mid-send, and is "unknown", not resent
    sending_at: Mapped[datetime | None]


class RateWindow(Base):
    """One rate-limit window of one key (a robot, an app, a chat), shared by every process.

    ``spent``: when the last sends counted against it happened (epoch seconds, oldest first, at
    most ``count`` kept); ``blocked_until``: the platform refused a send (DingTalk 130101, WeCom
    45009, Feishu 11232) and nothing goes to this key before then. Taken under a row lock
    (``bot.worker.rate_limits``)."""

    __tablename__ = "rate_windows"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_ms: Mapped[int] = mapped_column(Integer, primary_key=True)
    spent: Mapped[list[Any]] = mapped_column(default=list)
    blocked_until: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class JobRun(Base):
    """A claimed scheduled run: (job, period) is unique so a run happens once across workers."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "period", "attempt"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=0)  # 0 = scheduled; >0 = explicit `planloop run`
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | done | failed
    claimed_by: Mapped[str] = mapped_column(String(100), default="")
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Setting(Base):
    """Small key/value state owned by the service (e.g. alerts already sent, snoozes)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime]


class SimMessage(Base):
    """The simulator platform's transcript: what people said and what the bot delivered, per chat."""

    __tablename__ = "sim_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chat: Mapped[str] = mapped_column(String(200), index=True)  # a team id, or a person id for a DM
    sender: Mapped[str] = mapped_column(String(64))  # a person id, or "bot"
    text: Mapped[str] = mapped_column(Text, default="")
    card: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime]


class AftersaleCase(Base):
    """One after-sales / complaint case as a shop reported it; metrics are recomputed from these."""

    __tablename__ = "aftersale_cases"
    __table_args__ = (
        Index("ix_aftersale_cases_opened", "opened"),
        Index("ix_aftersale_cases_closed", "closed"),
    )

    shop: Mapped[str] = mapped_column(String(64), primary_key=True)  # the source id, or the file's shop
    case_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))  # who wrote it last
    opened: Mapped[datetime]
    closed: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(100), default="")
    reason: Mapped[str] = mapped_column(String(300), default="")  # as the platform wrote it
    cause: Mapped[str] = mapped_column(String(16))  # 物流 | 产品 | 描述不符 | 服务 | 其他
    updated_at: Mapped[datetime]


class ApiToken(Base):
    """A token of the open API (issue 21): only the SHA-256 of the secret is kept; ``prefix`` (the
    secret's first characters) lets a person tell tokens apart without it."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    team_id: Mapped[str | None] = mapped_column(String(64))  # None: every team
    rate_per_minute: Mapped[int] = mapped_column(Integer, default=600)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ApiIdempotency(Base):
    """The first answer to a write sent with an ``Idempotency-Key``: a retry gets it again."""

    __tablename__ = "api_idempotency"

    token_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(index=True)


class WebhookSubscription(Base):
    """An outgoing webhook made through the API (issue 21); ``[[webhooks]]`` in planloop.toml are
    not stored. The secret is sealed with server.secret_key (storage/secrets.py)."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    secret_enc: Mapped[str] = mapped_column(Text)
    events: Mapped[list[Any]] = mapped_column(default=list)  # empty: every event
    allow_private: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))  # the audit actor (token id)


class ConsoleSession(Base):
    """A web console credential, stored only as the SHA-256 of its random token (bot/console/sessions.py):
    ``link`` a one-time sign-in URL, ``oauth`` a sign-in under way (its ``state``), ``session`` a
    signed-in browser. Expires; revoked by logout or ``planloop console logout --all``."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the token
    kind: Mapped[str] = mapped_column(String(16))  # link | oauth | session
    person_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"))
    csrf: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
