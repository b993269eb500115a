"""Issue 16: `planloop verify` recomputes every published appraisal of a simulated quarter and finds 0.

The quarter of tests/test_digests_quarter.py (中秋, 国庆, 调休, the 双11 switch, leave, pauses) with,
on top: a penalty item on the customer-service template (差评, counted per person), a newcomer's
ratings and checklists every week, and two appeals (a corrected value, an excluded item).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from storage.db import transaction
from storage.models import Appeal, Appraisal, MetricSample
from tests.test_digests_quarter import WEEKS, run_quarter, seed_quarter_metrics
from tests.test_numbers import EXAMPLE

PENALTY = """
[[kpis]]
key = "bad_reviews"
name = "差评数"
unit = "条"
direction = "down"
metric = "bad_reviews"
"""


def _with_penalty(tmp_path) -> str:
    text = EXAMPLE.read_text("utf-8")
    old = "weights = { complaint_rate = 40, avg_response = 30, inquiry_conversion = 30 }"
    assert old in text
    text = text.replace(
        old, old + '\nadjustments = [{ kpi = "bad_reviews", name = "差评", points = -5, min = -15, max = 0 }]'
    )
    text = text.replace("[[templates]]", PENALTY + "\n[[templates]]", 1)
    path = tmp_path / "team.toml"
    path.write_text(text, "utf-8")
    return str(path)


def _rate_the_newcomer(sim) -> None:
    for n, week in enumerate(WEEKS):
        if week < "2026-W42":  # 赵强 joins on 10-12
            continue
        done = {"person": "zhaoqiang", "kpi": "learning", "week": week, "done": str(n % 5), "planned": "4"}
        stars = {"person": "zhaoqiang", "kpi": "leader_rating", "week": week, "stars": str(1 + n % 5)}
        for values in (done, stars):
            (saved,) = sim.act("zhangwei", "appraisal.rate", values, id=f"rate-{week}-{values['kpi']}")
            assert saved["title"] == "已保存", saved["text"]


def _bad_reviews(db) -> None:
    """孙丽 gets 0–4 bad reviews a week (per-person samples): penalties from 0 to the −15 floor."""
    with transaction(db) as s:
        for n, week in enumerate(WEEKS):
            monday = date.fromisocalendar(2026, int(week[6:]), 1)
            for k in range(n % 5):
                s.add(
                    MetricSample(
                        metric="bad_reviews",
                        scope="sunli",
                        day=monday + timedelta(days=k),
                        value=Decimal(1),
                        source="test",
                        fetched_at=datetime(2026, 9, 1, tzinfo=UTC),
                    )
                )


def _appeal(sim, db, who: str, week: str, kpi: str, decision: dict) -> None:
    with db() as s:
        row = s.scalar(
            select(Appraisal).where(Appraisal.person_id == who, Appraisal.week == week, Appraisal.current)
        )
        assert row is not None
        appraisal_id = row.id
    values = {"appraisal": str(appraisal_id), "kpi": kpi, "note": "周六的数据晚到"}
    (done,) = sim.act(who, "appraisal.appeal.submit", values)
    assert done["title"].startswith("申诉已提交"), done["text"]
    with db() as s:
        appeal = s.scalar(select(Appeal).where(Appeal.appraisal_id == appraisal_id))
        assert appeal is not None
        appeal_id = appeal.id
    (decided,) = sim.act("zhangwei", "appraisal.appeal.decide", {"appeal": str(appeal_id), **decision})
    assert decided["title"] == "申诉已处理", decided["text"]


@pytest.mark.slow
def test_verify_finds_no_discrepancy_in_a_simulated_quarter(
    services, db, clock, demo_team, sim, config, capsys, tmp_path
) -> None:
    import tomllib

    from bot.cli.commands import main
    from handlers.setup import apply, parse

    # the admin adds the penalty on 10-12 (W42): a new version of cs-default from that week on
    edited = parse(tomllib.loads(Path(_with_penalty(tmp_path)).read_text("utf-8")))
    with transaction(db) as s:
        apply(s, edited, now=datetime(2026, 10, 12, 9, 0, tzinfo=UTC))
    seed_quarter_metrics(db, clock)
    _bad_reviews(db)
    _rate_the_newcomer(sim)
    run_quarter(services, clock, sim)
    _appeal(sim, db, "lilei", "2026-W49", "conversion_rate", {"decision": "correct", "value": "4.2"})
    _appeal(sim, db, "hanmeimei", "2026-W48", "ctr", {"decision": "exclude", "reply": "数据源故障"})

    checked, flags, adjustments, versions = 0, set(), set(), {}
    for week in WEEKS:
        capsys.readouterr()
        assert main(["--config", config, "verify", "appraisals", "--week", week]) == 0, capsys.readouterr()
        out = capsys.readouterr().out.splitlines()
        assert out[-1].endswith(" 0 discrepancies"), out
        checked += int(out[-1].split()[0])
        assert main(["--config", config, "export", "appraisals", "--week", week]) == 0
        for entry in json.loads(capsys.readouterr().out)["appraisals"]:
            flags.update(entry["flags"])
            adjustments.update(a["points"] for a in entry["adjustments"])
            if entry["template"] == "cs-default":
                versions.setdefault(week, set()).add(entry["template_version"])
    # the quarter exercised what the verifier checks
    assert checked >= 13 * 8
    assert {"late", "manual_rating", "appeal_excluded", "appeal_corrected", "adjusted"} <= flags, flags
    assert {0, -5, -10, -15} <= adjustments
    # each week scored with the template version in force that week
    assert {w: v for w, v in versions.items()} == {w: {1 if w < "2026-W42" else 2} for w in versions}
    assert "2026-W41" in versions and "2026-W49" in versions
