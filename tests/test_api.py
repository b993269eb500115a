"""The open API (bot/api/): document, tokens, scopes × endpoints, errors, reads as the exports,
pages, ETags, metric pushes, plans, idempotency, rate limits. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from bot.api.tokens import SCOPES, create_token, revoke_token
from handlers import exports
from storage.models import ApiToken, AuditLog, MetricSample, Plan, TemplateSwitch

API = "/api/v1"
WEEK = "2026-W48"  # the clock fixture's week


@pytest.fixture
def token(db, clock, demo_team):  # noqa: ANN001, ANN201
    """A maker of tokens: token("plans:read", team="ops") -> (id, "Bearer …" headers)."""

    def make(*scopes: str, team: str | None = None, rate: int = 600, expires=None):  # noqa: ANN001, ANN202
        with db() as session, session.begin():
            made = create_token(
                session,
                name="t",
                scopes=list(scopes),
                now=clock(),
                team=team,
                rate_per_minute=rate,
                expires_at=expires,
            )
            return made.row.id, {"Authorization": f"Bearer {made.secret}"}

    return make


# ---------------------------------------------------------------- the document and its page


def test_document_is_openapi_31_with_every_operation(client):
    r = client.get(f"{API}/openapi.json")
    assert r.status_code == 200
    doc = r.get_json()
    assert doc["openapi"] == "3.1.0"
    assert doc["servers"] == [{"url": "/api/v1"}]
    ops = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert ops == {
        ("/teams", "get"),
        ("/people", "get"),
        ("/kpis", "get"),
        ("/templates", "get"),
        ("/periods", "get"),
        ("/scenarios", "get"),
        ("/plans", "get"),
        ("/plans", "post"),
        ("/progress", "get"),
        ("/appraisals", "get"),
        ("/metrics", "post"),
        ("/template-switches", "post"),
        ("/template-switches/{switch_id}", "delete"),
        ("/scenarios/{scenario_id}", "patch"),
        ("/webhooks", "post"),
        ("/webhooks", "get"),
        ("/webhooks/{webhook_id}", "delete"),
        ("/kpis/{key}", "put"),
        ("/templates/{template_id}", "put"),
    }
    # request and answer models are the pydantic models, problems are problem+json
    metrics = doc["paths"]["/metrics"]["post"]
    assert metrics["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/MetricsIn")
    assert set(metrics["responses"]["422"]["content"]) == {"application/problem+json"}
    assert doc["components"]["schemas"]["MetricsIn"]["properties"]["samples"]["maxItems"] == 10_000
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_docs_page_is_served_from_the_package(client):
    r = client.get(f"{API}/docs")
    assert r.status_code == 302 and r.headers["Location"].endswith("docs/swagger")
    page = client.get(f"{API}/docs/swagger")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "https://" not in html and "http://" not in html  # no CDN: intranets have no internet
    for asset in ("swagger/css/swagger-ui.css", "swagger/js/swagger-ui-bundle.js"):
        assert asset in html
        got = client.get(f"{API}/docs/{asset}")
        assert got.status_code == 200 and len(got.data) > 1000
        got.close()


# ---------------------------------------------------------------- tokens and scopes


def test_only_the_hash_is_stored_and_revocation_and_expiry_refuse(client, db, clock, token):
    token_id, headers = token("plans:read")
    secret = headers["Authorization"].split()[1]
    with db() as session:
        row = session.get(ApiToken, token_id)
        assert secret not in json.dumps([row.token_hash, row.prefix, row.name])
        assert secret.startswith(row.prefix) and len(row.token_hash) == 64
    assert client.get(f"{API}/teams", headers=headers).status_code == 200
    with db() as session:
        assert session.get(ApiToken, token_id).last_used_at == clock()
    with db() as session, session.begin():
        revoke_token(session, token_id, now=clock())
    r = client.get(f"{API}/teams", headers=headers)
    assert r.status_code == 401 and r.content_type == "application/problem+json"
    assert "revoked" in r.get_json()["detail"]

    _, soon = token("plans:read", expires=clock() + timedelta(hours=1))
    assert client.get(f"{API}/teams", headers=soon).status_code == 200
    clock.advance(hours=2)
    assert "expired" in client.get(f"{API}/teams", headers=soon).get_json()["detail"]


@pytest.mark.parametrize(
    "auth, status",
    [
        (None, 401),
        ("Basic abc", 401),
        ("Bearer ", 401),
        ("Bearer pl_not-a-token", 401),
        ("Bearer " + "x" * 5000, 401),
    ],
)
def test_missing_or_unknown_tokens_are_401(client, demo_team, auth, status):
    headers = {"Authorization": auth} if auth else {}
    r = client.get(f"{API}/teams", headers=headers)
    assert r.status_code == status
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.get_json()["status"] == status


METRIC = {"samples": [{"date": "2026-11-20", "metric": "pay_conversion_rate", "value": "3.1%"}]}
PLAN = {
    "employee": "lilei",
    "items": [{"text": "优化详情页首屏", "kpi": "conversion_rate", "target": "+2pp"}],
}

# every operation, the scope it needs and its answer when allowed
ENDPOINTS = [
    ("get", "/teams", None, "plans:read", 200),
    ("get", "/people", None, "plans:read", 200),
    ("get", "/kpis", None, "templates:read", 200),
    ("get", "/templates", None, "templates:read", 200),
    ("get", "/periods", None, "templates:read", 200),
    ("get", "/scenarios", None, "templates:read", 200),
    ("get", f"/plans?week={WEEK}", None, "plans:read", 200),
    ("get", f"/progress?week={WEEK}", None, "progress:read", 200),
    ("get", f"/appraisals?week={WEEK}", None, "appraisals:read", 200),
    ("post", "/metrics", METRIC, "metrics:write", 200),
    ("post", "/plans", PLAN, "plans:write", 200),
    ("post", "/template-switches", {"team": "ops", "to": "ops-promo"}, "switches:write", 200),
    ("delete", "/template-switches/999999", None, "switches:write", 404),
    ("patch", "/scenarios/logistics_peak", {"active": True}, "scenarios:write", 200),
    ("get", "/webhooks", None, "webhooks:write", 200),
    ("post", "/webhooks", {"url": "https://erp.example.com/hook", "secret": "s" * 16}, "webhooks:write", 200),
    ("delete", "/webhooks/wh_none", None, "webhooks:write", 404),
    ("put", "/kpis/gmv", {"name": "GMV", "unit": "元", "metric": "pay_amount"}, "templates:write", 200),
    ("put", "/templates/ops-api", {"role": "operations", "weights": {"ctr": 100}}, "templates:write", 200),
]


@pytest.mark.parametrize("held", [*SCOPES, "admin"])
def test_scope_by_endpoint_table(client, token, held):
    """Each scope opens exactly its operations; admin opens all of them."""
    _, headers = token(held)
    for method, path, body, needed, ok in ENDPOINTS:
        r = getattr(client, method)(f"{API}{path}", headers=headers, json=body)
        allowed = held in (needed, "admin")
        assert r.status_code == (ok if allowed else 403), (held, method, path, r.get_json())
        if not allowed:
            assert needed in r.get_json()["detail"]


def test_every_documented_operation_is_in_the_table(client):
    doc = client.get(f"{API}/openapi.json").get_json()
    documented = {(method, path) for path, item in doc["paths"].items() for method in item}
    tabled = {
        (
            method,
            path.split("?")[0]
            .replace("999999", "{switch_id}")
            .replace("logistics_peak", "{scenario_id}")
            .replace("wh_none", "{webhook_id}")
            .replace("/kpis/gmv", "/kpis/{key}")
            .replace("/templates/ops-api", "/templates/{template_id}"),
        )
        for method, path, *_ in ENDPOINTS
    }
    assert documented == tabled


def test_a_team_token_sees_and_writes_only_its_team(client, token):
    _, headers = token("admin", team="ops")
    assert [t["id"] for t in client.get(f"{API}/teams", headers=headers).get_json()["teams"]] == ["ops"]
    people = client.get(f"{API}/people", headers=headers).get_json()["people"]
    assert people and {p["team"] for p in people} == {"ops"}
    plans = client.get(f"{API}/plans?week={WEEK}", headers=headers).get_json()["plans"]
    assert plans and {p["team"] for p in plans} == {"ops"}
    assert client.get(f"{API}/plans?week={WEEK}&team=service", headers=headers).status_code == 403
    r = client.post(f"{API}/plans", headers=headers, json={**PLAN, "employee": "wangfang"})
    assert r.status_code == 403
    assert client.post(f"{API}/metrics", headers=headers, json=METRIC).status_code == 403


def test_rate_limit_answers_429_with_retry_after(client, clock, token):
    _, headers = token("plans:read", rate=2)
    assert [client.get(f"{API}/teams", headers=headers).status_code for _ in range(2)] == [200, 200]
    r = client.get(f"{API}/teams", headers=headers)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "60"
    clock.advance(seconds=61)
    assert client.get(f"{API}/teams", headers=headers).status_code == 200


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "body, status, field",
    [
        ("{not json", 400, "body"),
        ("[]", 422, "body"),
        ('{"samples": []}', 422, "samples"),
        ('{"samples": [{"date": "2026-11-20", "metric": "ctr"}]}', 422, "samples/0/value"),
        ('{"samples": [{"date": 5, "metric": "ctr", "value": 1}]}', 422, "samples/0/date"),
        ('{"samples": [{"date": "2026-11-20", "metric": "ctr", "value": {"a": 1}}]}', 422, "samples/0/value"),
    ],
)
def test_bad_bodies_are_problems_with_field_errors(client, token, body, status, field):
    _, headers = token("metrics:write")
    r = client.post(f"{API}/metrics", headers={**headers, "Content-Type": "application/json"}, data=body)
    assert r.status_code == status
    assert r.content_type == "application/problem+json"
    problem = r.get_json()
    assert problem["status"] == status and problem["title"]
    assert any(e["field"].startswith(field) for e in problem["errors"]), problem


def test_too_many_samples_are_refused_whole(client, token):
    _, headers = token("metrics:write")
    samples = [{"date": "2026-11-20", "metric": "ctr", "value": i} for i in range(10_001)]
    r = client.post(f"{API}/metrics", headers=headers, json={"samples": samples})
    assert r.status_code == 422
    assert r.get_json()["errors"][0]["field"] == "samples"


@pytest.mark.parametrize(
    "query, field",
    [("week=2026-48", "week"), ("week=2026-W48&limit=0", "limit"), ("week=2026-W48&cursor=%%%", "cursor")],
)
def test_bad_parameters_are_422(client, token, query, field):
    _, headers = token("plans:read")
    r = client.get(f"{API}/plans?{query}", headers=headers)
    assert r.status_code == 422
    assert [e["field"] for e in r.get_json()["errors"]] == [field]


def test_unknown_team_or_employee_is_404(client, token):
    _, headers = token("admin")
    assert client.get(f"{API}/plans?week={WEEK}&team=nobody", headers=headers).status_code == 404
    assert client.get(f"{API}/plans?week={WEEK}&employee=nobody", headers=headers).status_code == 404
    r = client.post(f"{API}/plans", headers=headers, json={**PLAN, "employee": "nobody"})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "employee"


# ---------------------------------------------------------------- reads: the exports, pages, ETags


@pytest.mark.parametrize("what", ["plans", "progress", "appraisals"])
def test_week_reads_are_the_exports(client, db, clock, token, what):
    _, headers = token("admin")
    client.post(f"{API}/plans", headers=headers, json=PLAN)
    got = client.get(f"{API}/{what}?week={WEEK}", headers=headers).get_json()
    with db() as session:
        want = json.loads(
            exports.encode(exports.export(session, what, WEEK, team=None, now=clock()), what, "json")
        )
    assert got == want
    assert "next_cursor" not in got


def test_pages_cover_the_list_once(client, token):
    _, headers = token("plans:read")
    whole = client.get(f"{API}/plans?week={WEEK}", headers=headers).get_json()["plans"]
    assert len(whole) == 12
    seen, cursor, pages = [], None, 0
    while True:
        url = f"{API}/plans?week={WEEK}&limit=5" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(url, headers=headers).get_json()
        assert body["week"] == WEEK
        seen += body["plans"]
        pages += 1
        cursor = body.get("next_cursor")
        if cursor is None:
            break
    assert pages == 3 and seen == whole


def test_etag_gives_304_until_the_data_changes(client, token):
    _, headers = token("admin")
    first = client.get(f"{API}/plans?week={WEEK}", headers=headers)
    etag = first.headers["ETag"]
    again = client.get(f"{API}/plans?week={WEEK}", headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    client.post(f"{API}/plans", headers=headers, json=PLAN)
    changed = client.get(f"{API}/plans?week={WEEK}", headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_templates_come_with_their_versions(client, token):
    _, headers = token("templates:read")
    templates = client.get(f"{API}/templates", headers=headers).get_json()["templates"]
    assert templates and all(t["versions"] and t["versions"][0]["version"] == 1 for t in templates)
    periods = {p["id"]: p for p in client.get(f"{API}/periods", headers=headers).get_json()["periods"]}
    assert periods["double11"]["from"] == "10-20" and periods["double11"]["to"] == "11-11"


# ---------------------------------------------------------------- writes


def test_metrics_push_is_a_file_import(client, db, token):
    token_id, headers = token("metrics:write")
    body = {
        "samples": [
            {"date": "2026-11-22", "metric": "pay_conversion_rate", "value": "3.30%"},
            {"date": "2026-11-22", "metric": "ctr", "value": 4.5, "scope": "shop"},
            {"date": "2026-11-22", "metric": "no_such_metric", "value": 1},
            {"date": "not a day", "metric": "ctr", "value": 1},
            {"date": "2026-11-21", "metric": "pay_amount", "value": "1,234.50"},
        ]
    }
    r = client.post(f"{API}/metrics", headers=headers, json=body)
    assert r.status_code == 200
    out = r.get_json()
    assert [x["index"] for x in out["rejected"]] == [2, 3]
    assert "no_such_metric" in out["rejected"][0]["error"]
    assert out["inserted"] + out["updated"] == 3 and out["unchanged"] == 0
    with db() as session:
        value = session.scalar(
            select(MetricSample.value).where(
                MetricSample.metric == "pay_amount", MetricSample.day == date(2026, 11, 21)
            )
        )
        assert float(value) == 1234.5
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "api.metrics")).one()
        assert audit.actor == f"token:{token_id}"
    again = client.post(f"{API}/metrics", headers=headers, json=body).get_json()
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 3)


def test_idempotency_key_returns_the_first_answer(client, db, token):
    _, headers = token("metrics:write", "plans:write")
    keyed = {**headers, "Idempotency-Key": "push-1"}
    first = client.post(f"{API}/metrics", headers=keyed, json=METRIC)
    retry = client.post(f"{API}/metrics", headers=keyed, json=METRIC)
    assert first.get_json()["inserted"] + first.get_json()["updated"] == 1
    assert retry.get_json() == first.get_json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    other = client.post(f"{API}/metrics", headers=keyed, json={"samples": METRIC["samples"] * 2})
    assert other.status_code == 422 and other.get_json()["errors"][0]["field"] == "Idempotency-Key"
    plan_key = {**headers, "Idempotency-Key": "plan-1"}
    a = client.post(f"{API}/plans", headers=plan_key, json=PLAN).get_json()
    b = client.post(f"{API}/plans", headers=plan_key, json=PLAN).get_json()
    assert a == b and a["created"] is True
    with db() as session:
        assert session.scalar(select(func.count()).select_from(Plan)) == 1
        assert session.scalar(select(func.count()).where(AuditLog.action == "api.metrics")) == 1


def test_an_idempotency_key_older_than_seven_days_is_a_new_request(client, clock, token):
    from storage.housekeeping import IDEMPOTENCY_KEEP

    _, headers = token("metrics:write")
    keyed = {**headers, "Idempotency-Key": "push-old"}
    assert "Idempotent-Replayed" not in client.post(f"{API}/metrics", headers=keyed, json=METRIC).headers
    clock.advance(seconds=IDEMPOTENCY_KEEP.total_seconds() - 60)
    assert client.post(f"{API}/metrics", headers=keyed, json=METRIC).headers["Idempotent-Replayed"] == "true"
    clock.advance(seconds=120)  # past the week, before any housekeeping run: a new request again
    later = client.post(f"{API}/metrics", headers=keyed, json=METRIC)
    assert later.status_code == 200 and "Idempotent-Replayed" not in later.headers
    assert later.get_json()["unchanged"] == 1  # it ran: the sample was already there


def test_plan_is_filed_as_in_chat(client, db, token):
    token_id, headers = token("plans:write")
    r = client.post(f"{API}/plans", headers=headers, json=PLAN)
    assert r.status_code == 200, r.get_json()
    saved = r.get_json()
    assert saved["week"] == WEEK and saved["created"] is True
    item = saved["plan"]["items"][0]
    assert item["kpi"] == "conversion_rate"
    assert item["target"] == pytest.approx(item["baseline"] + 2)  # "+2pp" resolved on the baseline
    with db() as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "plan.submit")).one()
        assert audit.detail["via"] == f"api:token:{token_id}"
        assert session.scalars(select(AuditLog.actor).where(AuditLog.action == "api.plans")).one() == (
            f"token:{token_id}"
        )
    same = client.post(f"{API}/plans", headers=headers, json=PLAN).get_json()
    assert same["created"] is False and same["plan"]["version"] == 1


@pytest.mark.parametrize(
    "items, fields",
    [
        ([{"text": "x", "kpi": "no-such-kpi", "target": "+2pp"}], ["items/0/kpi"]),
        ([{"text": "x", "kpi": "conversion_rate", "target": "lots"}], ["items/0/target"]),
        (
            [
                {"text": "ok", "kpi": "conversion_rate", "target": "+1pp"},
                {"text": "", "kpi": "ctr", "target": "+1%"},
            ],
            ["items/1/text"],
        ),
        ([], ["items"]),
    ],
)
def test_invalid_plans_store_nothing(client, db, token, items, fields):
    _, headers = token("plans:write")
    r = client.post(f"{API}/plans", headers=headers, json={"employee": "lilei", "items": items})
    assert r.status_code == 422
    assert [e["field"] for e in r.get_json()["errors"]] == fields
    with db() as session:
        assert session.scalar(select(func.count()).select_from(Plan)) == 0


def test_only_this_weeks_plan_is_open(client, token):
    _, headers = token("plans:write")
    r = client.post(f"{API}/plans", headers=headers, json={**PLAN, "week": "2026-W47"})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "week"
    assert client.post(f"{API}/plans", headers=headers, json={**PLAN, "week": WEEK}).status_code == 200


def test_template_switch_and_scenario_from_another_system(client, db, token):
    token_id, headers = token("switches:write", "scenarios:write")
    r = client.post(
        f"{API}/template-switches",
        headers=headers,
        json={"team": "ops", "to": "ops-promo", "until": "2026-11-29", "reason": "大促提前"},
    )
    assert r.status_code == 200, r.get_json()
    switch = r.get_json()
    assert (switch["team"], switch["template"], switch["start"], switch["until"]) == (
        "ops",
        "ops-promo",
        "2026-11-23",
        "2026-11-29",
    )
    assert switch["by"] == f"token:{token_id}" and switch["cancelled"] is False
    bad = client.post(f"{API}/template-switches", headers=headers, json={"team": "ops", "to": "cs-default"})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "to"
    ended = client.delete(f"{API}/template-switches/{switch['id']}", headers=headers).get_json()
    assert ended["cancelled"] is True  # it started today: ended before it counted
    on = client.patch(f"{API}/scenarios/logistics_peak", headers=headers, json={"active": True})
    assert on.get_json() == {"id": "logistics_peak", "name": "物流高峰", "active": True}
    assert client.patch(f"{API}/scenarios/nope", headers=headers, json={"active": True}).status_code == 404
    with db() as session:
        actions = {
            a.action: a.actor
            for a in session.scalars(select(AuditLog).where(AuditLog.actor == f"token:{token_id}"))
        }
        reasons = [
            a.detail.get("reason")
            for a in session.scalars(select(AuditLog).where(AuditLog.action == "template.switch"))
        ]
    assert set(actions) >= {"template.switch", "template.switch.cancel", "scenario.on"}
    assert reasons == ["大促提前"]  # the reason sits in the switch's own audit row, as from chat and console


@pytest.mark.parametrize(
    ("until", "words"),
    [
        ("13-45", "看不懂"),  # parse_day's DateError: once caught as AppraisalError only, so a 503
        ("2026-11-22", "早于开始日期"),  # the day before today (2026-11-23): the until field, not "to"
    ],
)
def test_a_bad_switch_end_day_is_a_field_error_on_until(client, db, token, until, words):
    _, headers = token("switches:write")
    r = client.post(
        f"{API}/template-switches", headers=headers, json={"team": "ops", "to": "ops-promo", "until": until}
    )
    assert r.status_code == 422, r.get_json()
    (error,) = r.get_json()["errors"]
    assert error["field"] == "until" and words in error["message"]
    with db() as session:
        assert session.scalar(select(func.count()).select_from(TemplateSwitch)) == 0


@pytest.mark.parametrize(
    "raw", ["NaN", "Infinity", "-Infinity", "1e400", '"1e400"', "123456789012345678901234567890"]
)
def test_numbers_json_cannot_store_are_refused_not_500(client, token, raw):
    _, headers = token("metrics:write")
    body = '{"samples": [{"date": "2026-11-20", "metric": "ctr", "value": ' + raw + "}]}"
    r = client.post(f"{API}/metrics", headers={**headers, "Content-Type": "application/json"}, data=body)
    assert r.status_code in (200, 422), r.get_data(as_text=True)
    if r.status_code == 200:
        out = r.get_json()
        assert [x["index"] for x in out["rejected"]] == [0] and out["inserted"] == 0


# ---------------------------------------------------------------- KPIs and templates without a file


def test_templates_and_kpis_are_written_checked_versioned_and_audited(client, db, token):
    token_id, headers = token("templates:write", "templates:read")
    kpi = client.put(
        f"{API}/kpis/gmv", headers=headers, json={"name": "成交额", "unit": "元", "metric": "pay_amount"}
    )
    assert kpi.status_code == 200 and kpi.get_json() == {
        "key": "gmv",
        "name": "成交额",
        "unit": "元",
        "direction": "up",
        "metric": "pay_amount",
        "kind": "metric",
        "scope": "shop",
    }
    body = {
        "name": "运营默认模板",
        "role": "operations",
        "weights": {"conversion_rate": 50, "gmv": 50},
        "cap": 130,
    }
    first = client.put(f"{API}/templates/ops-default", headers=headers, json=body).get_json()
    assert first["version"] == 2 and first["template"]["spec"]["weights"] == {
        "conversion_rate": 50,
        "gmv": 50,
    }
    again = client.put(f"{API}/templates/ops-default", headers=headers, json=body).get_json()
    assert again["version"] == 2  # the same entry twice is no new version
    listed = client.get(f"{API}/templates", headers=headers).get_json()["templates"]
    (ops,) = [t for t in listed if t["id"] == "ops-default"]
    assert [v["version"] for v in ops["versions"]] == [1, 2] and f"token:{token_id}" in ops["versions"][1][
        "reason"
    ]
    with db() as session:
        actions = session.scalars(
            select(AuditLog.action).where(AuditLog.actor == f"token:{token_id}").order_by(AuditLog.id)
        ).all()
    assert actions == ["api.kpi.put", "api.template.put", "api.template.put"]


@pytest.mark.parametrize(
    "path, body, field, words",
    [
        ("/templates/ops-default", {"weights": {"conversion_rate": 60, "ctr": 30}}, "weights", "100"),
        ("/templates/ops-default", {"weights": {"nope": 100}}, "weights", "nope"),
        ("/templates/ops-default", {"weights": {"ctr": 100}, "role": "astronaut"}, "role", "astronaut"),
        ("/templates/bad id", {"weights": {"ctr": 100}}, "id", ""),
        ("/kpis/gmv", {"name": "GMV"}, "metric", "metric"),
        ("/kpis/bad key", {"name": "GMV", "kind": "rating"}, "key", ""),
    ],
)
def test_bad_templates_and_kpis_are_refused_like_apply(client, db, token, path, body, field, words):
    _, headers = token("templates:write")
    r = client.put(f"{API}{path}", headers=headers, json=body)
    assert r.status_code == 422, r.get_json()
    problem = r.get_json()
    assert problem["errors"][0]["field"].startswith(field) and words in problem["detail"]
    with db() as session:
        assert session.scalar(select(AuditLog).where(AuditLog.action.like("api.%.put"))) is None
