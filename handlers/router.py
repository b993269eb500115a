"""Inbound -> handler, by kind: text commands by their first word, card actions and forms by action id."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, exists, select
from sqlalchemy.orm import Session

from cards.model import Card, Markdown
from handlers.inbound import Inbound
from storage.hot import HotStatement
from storage.models import Identity, Person, Team

log = logging.getLogger(__name__)


class LinkMaker(Protocol):
    def __call__(self, person_id: str, page: str, week: str = "", **extra: str) -> str: ...


def _no_links(person_id: str, page: str, week: str = "", **extra: str) -> str:
    return ""


@dataclass
class Context:
    """What a handler gets besides the event: the DB session (caller owns the transaction), the clock,
    the team's time zone and locale, a maker of signed page links, and the acting person.

    ``person`` is loaded on first use: a public handler (帮助) may answer knowing only
    ``person_id``, and then no ``Person`` is built at all."""

    session: Session
    now: datetime
    tz: ZoneInfo
    locale: str = "zh-CN"
    links: LinkMaker = _no_links
    person_id: str | None = None  # the acting person, when known
    bot_id: str = ""
    bots: frozenset[str] = frozenset()  # bot ids configured here (where messages can go)
    extra: dict[str, object] = field(default_factory=dict)
    _person: Person | None = field(default=None, repr=False)
    _welcomed: bool = field(default=False, repr=False)  # known without loading the person
    _leads: bool | None = field(default=None, repr=False)  # leads an active team; None: not asked yet
    _connection: Connection | None = field(default=None, repr=False)  # the transaction's, when given

    @property
    def connection(self) -> Connection:
        """The Core connection of the caller's transaction: for the few statements that run
        on every inbound event without the ORM (storage/hot.py)."""
        return self._connection if self._connection is not None else self.session.connection()

    @property
    def person(self) -> Person | None:
        if self._person is None and self.person_id is not None:
            self._person = self.session.get(Person, self.person_id)
        return self._person

    @person.setter
    def person(self, person: Person | None) -> None:
        self._person = person
        self.person_id = person.id if person is not None else None
        self._welcomed = person is not None and person.welcomed_at is not None

    def welcomed(self) -> bool:
        """Whether the bot has greeted the acting person (their first message), without loading them."""
        return self._person.welcomed_at is not None if self._person is not None else self._welcomed

    def leads_a_team(self) -> bool:
        """Whether the acting person leads an active team (asked once, or already known from the
        row that identified them)."""
        if self._leads is None:
            self._leads = self.person_id is not None and (
                _LEADS_A_TEAM.first(self.connection, {"person_id": self.person_id}) is not None
            )
        return self._leads

    @property
    def today(self):  # noqa: ANN201 - a date in the team's zone
        return self.now.astimezone(self.tz).date()


class PermissionDenied(Exception):
    """The actor may not do this; shown to them as a card they understand."""


Handler = Callable[[Inbound, Context], Card | None]


def error_card(message: str, title: str = "操作未完成") -> Card:
    return Card(title=title, theme="red", blocks=(Markdown(message),))


UNKNOWN_PERSON = (
    "还不认识你：你的账号还没有加入任何团队。请把这条消息转给管理员，让他在团队文件里加上你的账号 id：{actor}"
)


class Router:
    def __init__(self) -> None:
        self._actions: dict[str, tuple[Handler, bool]] = {}
        self._commands: dict[str, tuple[Handler, bool]] = {}
        self._fallback: Handler | None = None
        self._after: list[Callable[[Inbound, Context], None]] = []

    def action(self, name: str, *, public: bool = False) -> Callable[[Handler], Handler]:
        """Register a card button / form handler for ``name`` (e.g. ``plan.submit``)."""

        def deco(fn: Handler) -> Handler:
            self._actions[name] = (fn, public)
            return fn

        return deco

    def command(self, *words: str, public: bool = False) -> Callable[[Handler], Handler]:
        """Register a text command by its first word(s), e.g. ``@router.command("写计划", "plan")``."""

        def deco(fn: Handler) -> Handler:
            for word in words:
                self._commands[word.lower()] = (fn, public)
            return fn

        return deco

    def after(self, fn: Callable[[Inbound, Context], None]) -> Callable[[Inbound, Context], None]:
        """Register a step run after every handled event of a known person (the first-message welcome)."""
        self._after.append(fn)
        return fn

    def fallback(self, fn: Handler) -> Handler:
        self._fallback = fn
        return fn

    def lookup(self, event: Inbound) -> tuple[Handler, bool] | None:
        if event.kind == "text":
            first_line = event.text.strip().splitlines()[0] if event.text.strip() else ""
            word = first_line.split()[0].lower() if first_line.split() else ""
            found = self._commands.get(first_line.strip().lower()) or self._commands.get(word)
            if found:
                return found
            return (self._fallback, True) if self._fallback else None
        return self._actions.get(event.action)

    def dispatch(self, event: Inbound, ctx: Context) -> Card | None:
        found = self.lookup(event)
        if found is None:
            return error_card(
                f"这个按钮已失效或不认识（{event.action or event.text[:20]}）。发送“帮助”查看可用命令。"
            )
        handler, public = found
        if ctx.person_id is None:
            if public:  # may answer a stranger too: learn who it is, load the person only if used
                known = known_actor(ctx.connection, event.bot_id, event.actor)
                if known is not None:
                    ctx.person_id, ctx._welcomed, ctx._leads = known
            else:  # will use the person: one query loads them
                ctx.person = resolve_person(ctx.session, event.bot_id, event.actor)
        if ctx.person_id is None and not public:
            return error_card(UNKNOWN_PERSON.format(actor=event.actor), title="未加入团队")
        try:
            card = handler(event, ctx)
        except PermissionDenied as exc:
            return error_card(str(exc) or "你没有权限做这件事。", title="没有权限")
        if ctx.person_id is not None:
            for step in self._after:
                step(event, ctx)
        return card


def resolve_person(session: Session, bot_id: str, external_id: str) -> Person | None:
    """The active person behind ``external_id`` on ``bot_id``, or None."""
    return session.scalar(_PERSON_BY_IDENTITY, {"bot_id": bot_id, "external_id": external_id})


def known_actor(conn: Connection, bot_id: str, external_id: str) -> tuple[str, bool, bool] | None:
    """(person id, greeted already, leads an active team) of the active person behind
    ``external_id``, or None: one Core row, no ``Person`` built (what a public handler such as
    帮助 needs, in the one query it costs)."""
    row = _ACTOR_BY_IDENTITY.first(conn, {"bot_id": bot_id, "external_id": external_id})
    return None if row is None else (row[0], row[1] is not None, bool(row[2]))


# Built once: every inbound event runs one of them, and building a statement costs more than
# running it.
_BY_IDENTITY = (
    Identity.bot_id == bindparam("bot_id"),
    Identity.external_id == bindparam("external_id"),
    Person.active.is_(True),
)
_PERSON_BY_IDENTITY = select(Person).join(Identity, Identity.person_id == Person.id).where(*_BY_IDENTITY)
_TEAMS = Team.__table__.c
_LEADS_A_TEAM = HotStatement(
    select(_TEAMS.id).where(_TEAMS.leader_id == bindparam("person_id"), _TEAMS.active.is_(True)).limit(1)
)
_ACTOR_BY_IDENTITY = HotStatement(  # every inbound event of a public command runs it
    select(
        Person.__table__.c.id,
        Person.__table__.c.welcomed_at,
        exists().where(_TEAMS.leader_id == Person.__table__.c.id, _TEAMS.active.is_(True)),
    )
    .join(Identity.__table__, Identity.__table__.c.person_id == Person.__table__.c.id)
    .where(
        Identity.__table__.c.bot_id == bindparam("bot_id"),
        Identity.__table__.c.external_id == bindparam("external_id"),
        Person.__table__.c.active.is_(True),
    )
)


router = Router()
