"""The inbound path shared by every platform: verify -> dedupe -> route -> answer (or outbox)."""

from __future__ import annotations

import logging

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.platforms.base import Platform, WebResponse
from bot.services import Services
from cards.builders import private_reply_notice
from handlers.inbound import Inbound
from storage import events, outbox
from storage.db import connection_transaction

log = logging.getLogger("planloop.inbound")


def process(services: Services, platform: Platform, inbound: Inbound) -> WebResponse:
    """Handle one verified event in one transaction: the dedupe record, the handler's writes and
    any outbox rows commit together, so a crash means the platform's retry starts clean.

    Two requests racing on the same row (a platform retry arriving while the first is still
    running, a double click on PostgreSQL) make the loser's commit fail on a unique key; it is
    run once more, sees the winner's rows, and answers as a duplicate or a no-op would."""
    try:
        return _process_once(services, platform, inbound)
    except IntegrityError:
        log.info(
            "conflict with a concurrent request; running once more", extra={"event_id": inbound.event_id}
        )
        return _process_once(services, platform, inbound)


def _process_once(services: Services, platform: Platform, inbound: Inbound) -> WebResponse:
    # A Core connection holds the transaction and runs the hot statements (storage/hot.py);
    # the handlers' Session joins it, and does no work unless a handler uses it (帮助 does not).
    with connection_transaction(services.engine) as conn:
        with services.sessions(bind=conn) as session:  # joins the transaction, never commits it
            response = _handle(services, platform, inbound, conn, session)
            session.flush()  # the handlers' ORM changes, into the same transaction
        return response


def _handle(
    services: Services, platform: Platform, inbound: Inbound, conn: Connection, session: Session
) -> WebResponse:
    now = services.clock()
    if not events.first_time(conn, f"{inbound.bot_id}:{inbound.event_id}", now):
        log.info("duplicate event", extra={"event_id": inbound.event_id, "bot": inbound.bot_id})
        return platform.ack_duplicate(inbound)
    ctx = services.context(session, inbound.bot_id, connection=conn)
    card = services.router.dispatch(inbound, ctx)
    if card is not None and inbound.chat_type == "group" and inbound.kind == "text":
        # A command's answer is the asker's own (their plan, progress, score, and links signed
        # for them): it goes to their direct chat; the group only sees that it was sent.
        private = outbox.Target(inbound.bot_id, "user", inbound.actor)
        outbox.put(conn, private, card, dedupe_key=f"dm:{inbound.bot_id}:{inbound.event_id}", now=now)
        card = private_reply_notice(card.title)
    response, via_outbox = platform.answer(inbound, card)
    if card is not None and via_outbox:
        group = inbound.chat_type == "group"
        target = outbox.Target(
            inbound.bot_id,
            "chat" if group else "user",
            inbound.chat if group else inbound.actor,
            # lets the adapter answer in place (DingTalk session webhook or card, Feishu token …)
            reply_handle=inbound.reply_handle,
        )
        outbox.put(conn, target, card, dedupe_key=f"reply:{inbound.bot_id}:{inbound.event_id}", now=now)
    record = getattr(platform, "record", None)
    if record is not None:
        record(session, inbound, card, now)
    return response
