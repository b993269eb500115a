"""An ERP-style script with a plans:write,metrics:write,appraisals:read token: it files a plan,
pushes the week's numbers and reads the appraisal, all through the API; only the appraisal run is
the admin's (``planloop run appraisal`` = bot.worker.process.run_now)."""

from __future__ import annotations

from datetime import date, timedelta

from bot.api.tokens import create_token
from bot.worker.jobs import week_moment
from bot.worker.process import run_now

API = "/api/v1"
WEEK = "2026-W48"
DAILY = {  # the ERP's numbers for the ops team's KPIs, per day of the week
    "pay_conversion_rate": "5.10%",
    "ctr": "4.0%",
    "pay_amount": "12,000",
    "activity_sales": 900,
}


def test_erp_files_a_plan_pushes_numbers_and_reads_the_appraisal(client, db, clock, services, demo_team):
    with db() as session, session.begin():
        secret = create_token(
            session, name="erp", scopes=["plans:write", "metrics:write", "appraisals:read"], now=clock()
        ).secret
    erp = {"Authorization": f"Bearer {secret}"}

    plan = client.post(
        f"{API}/plans",
        headers={**erp, "Idempotency-Key": "erp-plan-lilei-W48"},
        json={
            "employee": "lilei",
            "week": WEEK,
            "items": [{"text": "优化详情页首屏", "kpi": "支付转化率", "target": "+2pp"}],
        },
    )
    assert plan.status_code == 200, plan.get_json()
    item = plan.get_json()["plan"]["items"][0]
    baseline = item["baseline"]
    assert item["target"] == round(baseline + 2, 8)

    monday = date(2026, 11, 23)
    samples = [
        {"date": (monday + timedelta(days=n)).isoformat(), "metric": metric, "value": value}
        for n in range(5)
        for metric, value in DAILY.items()
    ]
    pushed = client.post(
        f"{API}/metrics", headers={**erp, "Idempotency-Key": "erp-W48"}, json={"samples": samples}
    )
    assert pushed.status_code == 200
    counts = pushed.get_json()
    assert counts["rejected"] == [] and counts["inserted"] + counts["updated"] == len(samples)

    at = week_moment(services, "appraisal", WEEK)
    clock.set(at)
    result, _ = run_now(services, "appraisal", at)
    assert result.status != "failed", result

    got = client.get(f"{API}/appraisals?week={WEEK}", headers=erp)
    assert got.status_code == 200
    mine = [a for a in got.get_json()["appraisals"] if a["employee"] == "lilei"]
    assert len(mine) == 1, got.get_json()
    conversion = next(i for i in mine[0]["items"] if i["kpi"] == "conversion_rate")
    assert conversion["actual"] == 5.1  # the last number the ERP pushed
    assert conversion["target"] == item["target"] and conversion["baseline"] == baseline
    assert mine[0]["score"] >= 0 and mine[0]["grade"]
    # the token reads, files and pushes; it may not read what it was not given
    assert client.get(f"{API}/plans?week={WEEK}", headers=erp).status_code == 403
