"""/healthz and /readyz per CONTRACT.md: 200 when the database answers and is current, else 503 + JSON."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from bot.services import build_services
from bot.web.app import create_app
from storage.db import head_revision, make_engine


def test_ready_when_migrated(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    res = client.get("/readyz")
    assert res.status_code == 200
    assert res.get_json() == {"status": "ready"}


def test_not_ready_when_behind(client, engine):
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    try:
        res = client.get("/readyz")
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head_revision()})
    assert res.status_code == 503
    body = res.get_json()
    assert body["status"] == "not migrated"
    assert body["database"] == "0000" and body["code"] == head_revision()
    assert body["reason"] == (
        f"the database is at revision 0000 but the code needs {head_revision()}: run `planloop db upgrade` first"
    )
    assert body["error"] == body["reason"]


def test_not_ready_when_empty(settings, tmp_path):
    services = build_services(settings, engine=make_engine(f"sqlite:///{tmp_path / 'empty.db'}"))
    res = create_app(settings, services).test_client().get("/readyz")
    assert res.status_code == 503
    assert res.get_json()["reason"].startswith("the database is empty but the code needs")
    assert "planloop db upgrade" in res.get_json()["reason"]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://planloop:PW-in-url-42@127.0.0.1:1/planloop",  # nothing listens on port 1
        "sqlite:////nonexistent-dir/for/sure/planloop.db",
    ],
)
def test_not_ready_when_the_database_does_not_answer(settings, url, caplog):
    services = build_services(settings, engine=make_engine(url))
    res = create_app(settings, services).test_client().get("/readyz")
    assert res.status_code == 503
    body = res.get_json()
    assert body["status"] == "unavailable"
    assert body["reason"] == "database unavailable (OperationalError)"
    assert "PW-in-url-42" not in res.get_data(as_text=True) + caplog.text
