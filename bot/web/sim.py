"""The /sim/ chat simulator: a page and its JSON face (say, act, messages), on the same inbound path."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, request
from sqlalchemy import select

from bot.platforms.base import WebResponse
from bot.platforms.simulator import BOT_ID, card_json
from bot.services import Services
from bot.web.responses import to_flask
from bot.web.webhooks import handle, incoming
from cards.model import Card
from storage.models import Person, Team
from storage.transcript import lines

PAGE = Path(__file__).parent / "static" / "sim.html"


def blueprint(services: Services) -> Blueprint:
    bp = Blueprint("sim", __name__, url_prefix="/sim")
    adapter = services.platforms[BOT_ID]

    @bp.get("/")
    def page() -> Response:
        return Response(PAGE.read_text(encoding="utf-8"), content_type="text/html; charset=utf-8")

    @bp.post("/api/say")
    def say() -> Response:
        return to_flask(handle(services, adapter, incoming(request.environ, "say")))

    @bp.post("/api/act")
    def act() -> Response:
        return to_flask(handle(services, adapter, incoming(request.environ, "act")))

    @bp.get("/api/messages")
    def messages() -> Response:
        chat = request.args.get("chat", "")
        if not chat:
            return to_flask(WebResponse(400, {"error": "chat is required (a team id or a person id)"}))
        with services.sessions() as session:
            out = []
            for line in lines(session, chat):
                if line.card is not None:
                    item = card_json(Card.from_dict(line.card))
                else:
                    item = {"title": "", "text": line.text, "actions": []}
                item.update({"from": line.sender, "at": line.at.isoformat()})
                out.append(item)
        return to_flask(WebResponse(200, {"messages": out}))

    @bp.get("/api/people")
    def people() -> Response:
        with services.sessions() as session:
            teams = session.scalars(select(Team).where(Team.active.is_(True)).order_by(Team.id)).all()
            persons = session.scalars(
                select(Person).where(Person.active.is_(True)).order_by(Person.team_id, Person.id)
            )
            body = {
                "teams": [
                    {"id": t.id, "name": t.name, "leader": t.leader_id, "timezone": t.timezone} for t in teams
                ],
                "people": [{"id": p.id, "name": p.name, "team": p.team_id, "role": p.role} for p in persons],
            }
        return to_flask(WebResponse(200, body))

    return bp
