"""Editing a template in the console: the team file's own check as you type (exact messages), the
preview of last week's scores equal to a real run under the edited template, one version and one
audit row per save, CSRF and the admin-only rows of the permission table."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.console.template_edit import entry_from_form, last_week, preview, problems_of
from handlers.catalog_edits import put_template
from handlers.template_versions import entry_of
from storage.models import Appraisal, AuditLog, Template, TemplateVersion
from tests.appraisal_shop import add_plan
from tests.test_console import ADMIN, LEADER, MEMBER, settings, sign_in  # noqa: F401 - the fixture

OPS = {"w.conversion_rate": "60", "w.ctr": "40"}

CHECKS = [
    ("as stored", OPS, []),
    ("sum not 100", {"w.conversion_rate": "60", "w.ctr": "30"}, ["weights: 权重合计为 90，必须等于 100"]),
    ("no weights", {"cap": "120"}, ["weights: 应为非空的表：{ 指标 key = 权重 }"]),
    (
        "weight not a number",
        {"w.conversion_rate": "6o", "w.ctr": "40"},
        ["weights.conversion_rate: 权重应为数字，不是“6o”"],
    ),
    ("cap too high", {**OPS, "cap": "5000"}, ["cap: 封顶应为 100–1000 之间的百分数，不是“5000”"]),
    ("cap too low", {**OPS, "cap": "50"}, ["cap: 封顶应为 100–1000 之间的百分数，不是“50”"]),
    (
        "unknown KPI",
        {"w.conversion_rate": "60", "w.ghost": "40"},
        ["weights.ghost: 没有 key 为“ghost”的指标（[[kpis]]）"],
    ),
    (
        "grade above the cap",
        {**OPS, "grades": "S=200, A=100"},
        ["grades.S: 下限应为 0–150 之间的数字，不是“200”"],
    ),
    ("grade not a number", {**OPS, "grades": "S=abc"}, ["grades.S: 下限应为 0–150 之间的数字，不是“abc”"]),
    ("two grades one bound", {**OPS, "grades": "S=100, A=100"}, ["grades.A: 与 S 的下限相同（100）"]),
    (
        "curve not rising",
        {**OPS, "c.ctr": "80:0, 60:50"},
        ["curves.ctr[2].below: 各段的 below 应逐段递增"],
    ),
]


@pytest.mark.parametrize("name, form, expected", CHECKS, ids=[c[0] for c in CHECKS])
def test_validation_messages(db, demo_team, name, form, expected):  # noqa: ANN001
    with db() as session:
        row = session.get(Template, "ops-default")
        assert problems_of(session, row.id, entry_from_form(entry_of(row), form)) == expected


def file_plans(db, week: str) -> None:  # noqa: ANN001
    """Two operators filed last week's plan (against the demo's shop metrics)."""
    with db() as session, session.begin():
        add_plan(
            session,
            "lilei",
            week,
            [("conversion_rate", "+0.5pp", "2.0", "shop"), ("ctr", "+5%", "2.0", "shop")],
        )
        add_plan(
            session,
            "zhaoqiang",
            week,
            [("conversion_rate", "+3pp", "2.0", "shop"), ("ctr", "+50%", "2.0", "shop")],
        )


def test_preview_equals_a_real_run_under_the_edited_template(db, clock, demo_team):  # noqa: ANN001
    from handlers.appraisal_runs import run_week

    week = last_week(clock())
    file_plans(db, week)
    form = {"w.conversion_rate": "20", "w.ctr": "80", "cap": "120", "grades": "S=110, A=90, B=70, C=50"}
    with db() as session:
        row = session.get(Template, "ops-default")
        entry = entry_from_form(entry_of(row), form)
        rows = preview(session, row.id, entry, week)
        session.rollback()
    assert rows, "nobody scored under ops-default last week: the comparison below would be empty"
    assert any(r.changed for r in rows)
    with db() as session, session.begin():
        written = session.scalar(select(func.count()).select_from(Appraisal))
    assert written == 0  # the preview wrote nothing
    with db() as session, session.begin():
        put_template(session, "ops-default", entry, actor=ADMIN, now=clock(), via="console")
        run = run_week(session, week, clock(), current_rules=True, hold=False)
        real = {a.person_id: (f"{a.score:.1f}", a.grade) for a in run if a.template_id == "ops-default"}
    assert {r.person: (r.after, r.grade_after) for r in rows} == real


def counts(db, template_id: str = "ops-default") -> tuple[int, int]:  # noqa: ANN001
    with db() as session:
        versions = session.scalar(
            select(func.count())
            .select_from(TemplateVersion)
            .where(TemplateVersion.template_id == template_id)
        )
        audits = session.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "console.template.put")
        )
    return versions, audits


def test_check_answers_a_fragment_with_the_problems_or_the_preview(client, services, db, clock, demo_team):  # noqa: ANN001
    file_plans(db, last_week(clock()))
    csrf = sign_in(client, services, ADMIN)
    bad = client.post("/console/templates/ops-default/check", data={"_csrf": csrf, "w.conversion_rate": "60"})
    assert bad.status_code == 200
    assert '<li class="problem">weights: 权重合计为 60，必须等于 100</li>' in bad.get_data(as_text=True)
    good = client.post("/console/templates/ops-default/check", data={"_csrf": csrf, **OPS, "w.ctr": "40"})
    body = good.get_data(as_text=True)
    assert 'data-person="lilei"' in body and "150.0 S" in body and "problem" not in body
    assert counts(db) == (1, 0)  # checking wrote nothing


@pytest.mark.parametrize(
    "path", ["/console/templates/ops-default/check", "/console/templates/ops-default/edit"]
)
def test_an_over_long_field_is_refused_not_cut(client, services, db, demo_team, path):  # noqa: ANN001
    """A curve cut at some length could still parse and be saved wrong: refused whole instead."""
    csrf = sign_in(client, services, ADMIN)
    curve = ", ".join(f"{n}:{n}" for n in range(0, 2000, 5))  # rises, parses, 2,000+ characters
    res = client.post(path, data={"_csrf": csrf, **OPS, "c.ctr": curve, "action": "save"})
    assert res.status_code == 400
    assert "单个输入最多 2000 字" in res.get_data(as_text=True)
    assert counts(db) == (1, 0)  # nothing saved


def test_save_makes_one_version_and_one_audit_row(client, services, db, demo_team):  # noqa: ANN001
    csrf = sign_in(client, services, ADMIN)
    assert counts(db) == (1, 0)  # applied from the team file: version 1
    form = {"_csrf": csrf, "w.conversion_rate": "70", "w.ctr": "30", "cap": "120", "do": "save"}
    res = client.post("/console/templates/ops-default/edit", data=form)
    assert res.status_code == 303 and "done=template_saved" in res.headers["Location"]
    assert counts(db) == (2, 1)
    with db() as session:
        row = session.get(Template, "ops-default")
        assert row.spec["weights"] == {"conversion_rate": 70, "ctr": 30} and row.spec["cap"] == 120
        audit = session.scalar(select(AuditLog).where(AuditLog.action == "console.template.put"))
        assert (audit.actor, audit.detail["version"]) == (ADMIN, 2)
    # a refused save writes nothing and shows the problem on the form
    refused = client.post("/console/templates/ops-default/edit", data={**form, "cap": "20"})
    assert refused.status_code == 200 and "cap: 封顶应为 100–1000 之间的百分数，不是“20”" in refused.get_data(
        as_text=True
    )
    # the preview button (no JS) shows the preview and saves nothing
    shown = client.post("/console/templates/ops-default/edit", data={**form, "w.ctr": "30", "do": "preview"})
    assert shown.status_code == 200 and 'id="preview"' in shown.get_data(as_text=True)
    assert counts(db) == (2, 1)


@pytest.mark.parametrize(
    "path", ["/console/templates/ops-default/edit", "/console/templates/ops-default/check"]
)
@pytest.mark.parametrize(
    "csrf, headers", [("", {}), ("forged", {}), (None, {"Origin": "https://evil.example"})]
)
def test_csrf_refused(client, services, db, demo_team, path, csrf, headers):  # noqa: ANN001
    real = sign_in(client, services, ADMIN)
    form = {"_csrf": real if csrf is None else csrf, "w.conversion_rate": "70", "w.ctr": "30", "do": "save"}
    assert client.post(path, data=form, headers=headers).status_code == 403
    assert counts(db) == (1, 0)


def test_no_such_template_is_a_404_page_not_a_500(client, services, demo_team):  # noqa: ANN001
    sign_in(client, services, ADMIN)
    res = client.get("/console/templates/nope/edit")
    assert res.status_code == 404 and "没有 id 为“nope”的模板" in res.get_data(as_text=True)


@pytest.mark.parametrize("who", [LEADER, MEMBER])
def test_only_an_admin_checks(client, services, demo_team, who):  # noqa: ANN001
    csrf = sign_in(client, services, who)
    assert client.post("/console/templates/ops-default/check", data={"_csrf": csrf, **OPS}).status_code == 403
