"""Outgoing webhooks through the API (issue 21): POST one, GET the list (the configured
``[[webhooks]]`` too, read-only), DELETE one made through the API. A token with webhooks:write.
The address is checked by the outbound-URL guard now, as planloop.toml's entries are at load."""

from __future__ import annotations

import secrets as random
from typing import Any

from flask import Response
from flask_openapi3 import APIBlueprint, Tag
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.api import models as m
from bot.api.auth import Caller, caller, services
from bot.api.paging import dump, json_response
from bot.api.problems import ApiProblem, FieldError
from bot.api.writes import ANSWERS, write_once
from bot.config import webhook_problems
from storage import secrets
from storage.db import transaction
from storage.models import AuditLog, WebhookSubscription

SCOPE = "webhooks:write"


def _out(row: WebhookSubscription) -> m.WebhookOut:
    return m.WebhookOut(
        id=row.id,
        url=row.url,
        events=list(row.events),
        allow_private=row.allow_private,
        source="api",
        created_at=row.created_at.isoformat(),
    )


def _only_all_teams(who: Caller) -> None:
    if who.team is not None:
        raise ApiProblem(
            403, "events of every team go to a webhook: a token limited to one team may not add one"
        )


def post_webhook(header: m.WriteHeaders, body: m.WebhookIn) -> Response:
    who = caller(SCOPE)
    _only_all_teams(who)
    return write_once(who, header.idempotency_key, lambda session: _create(session, who, body))


def _create(session: Session, who: Caller, body: m.WebhookIn) -> dict[str, Any]:
    if body.allow_private and "admin" not in who.scopes:
        # a receiver inside the network lifts the URL guard: not for a webhooks:write token alone
        raise ApiProblem(
            403,
            "allow_private needs an admin token (or a [[webhooks]] entry in planloop.toml)",
            errors=[FieldError(field="allow_private", message="needs the admin scope")],
        )
    problems = webhook_problems("webhook", body.url, body.events, body.allow_private)
    if problems:
        errors = [
            FieldError(field=p.split(":", 1)[0].split(".", 1)[-1], message=p.split(": ", 1)[-1])
            for p in problems
        ]
        raise ApiProblem(422, problems[0].split(": ", 1)[-1], errors=errors)
    svc = services()
    try:
        sealed = secrets.Sealer([k.get() for k in svc.settings.secret_keys]).seal(body.secret)
    except secrets.SecretsUnavailable as exc:
        raise ApiProblem(409, f"the server cannot keep a secret: {exc}") from None
    now = svc.clock()
    row = WebhookSubscription(
        id="wh_" + random.token_hex(8),
        url=body.url,
        secret_enc=sealed,
        events=list(dict.fromkeys(body.events)),
        allow_private=body.allow_private,
        created_at=now,
        created_by=who.actor,
    )
    session.add(row)
    session.add(
        AuditLog(
            at=now,
            actor=who.actor,
            action="api.webhook.create",
            subject=f"webhook {row.id}",
            detail={"url": row.url, "events": row.events, "allow_private": row.allow_private},
        )
    )
    session.flush()
    return dump(_out(row))


def list_webhooks() -> Response:
    caller(SCOPE)
    svc = services()
    hooks = [
        m.WebhookOut(
            id=h.id, url=h.url, events=list(h.events), allow_private=h.allow_private, source="config"
        )
        for h in svc.settings.webhooks
    ]
    with transaction(svc.sessions) as session:
        hooks += [
            _out(r) for r in session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id))
        ]
    return json_response(dump(m.WebhookList(webhooks=hooks)))


def delete_webhook(path: m.WebhookPath, header: m.WriteHeaders) -> Response:
    who = caller(SCOPE)
    _only_all_teams(who)
    return write_once(who, header.idempotency_key, lambda session: _delete(session, who, path.webhook_id))


def _delete(session: Session, who: Caller, webhook_id: str) -> dict[str, Any]:
    row = session.get(WebhookSubscription, webhook_id)
    if row is None:
        raise ApiProblem(404, f"no webhook {webhook_id!r} made through the API")
    out = dump(_out(row))
    session.delete(row)
    session.add(
        AuditLog(
            at=services().clock(),
            actor=who.actor,
            action="api.webhook.delete",
            subject=f"webhook {webhook_id}",
        )
    )
    return out


def register(bp: APIBlueprint) -> None:
    """Add the outgoing-webhook operations to the API's blueprint."""
    tag = Tag(name="webhooks", description="outgoing webhooks: events POSTed to another system, signed")
    bp.post(
        "/webhooks",
        tags=[tag],
        summary="add an outgoing webhook (webhooks:write)",
        responses={200: m.WebhookOut, **ANSWERS},
    )(post_webhook)
    bp.get(
        "/webhooks",
        tags=[tag],
        summary="the outgoing webhooks (webhooks:write)",
        responses={200: m.WebhookList, **ANSWERS},
    )(list_webhooks)
    bp.delete(
        "/webhooks/<webhook_id>",
        tags=[tag],
        summary="remove an outgoing webhook made through the API (webhooks:write)",
        responses={200: m.WebhookOut, **ANSWERS},
    )(delete_webhook)
