"""People from the directory (handlers/directory.py): newcomers, leavers, adding, deactivating, apply."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from sqlalchemy import select

from handlers.directory import (
    Choice,
    DirectoryChoiceError,
    Member,
    add_people,
    deactivate,
    leavers,
    newcomers,
    record_pull,
    suggest_person_id,
)
from handlers.setup import apply, parse
from storage.db import transaction
from storage.models import AuditLog, Identity, Person

EXAMPLE = Path(__file__).parents[1] / "examples" / "team.toml"
BOT = "wecom-main"  # the example team lists everyone's WeCom userid (LiLei, HanMeimei, …)


def _example_ids() -> dict[str, str]:
    raw = tomllib.loads(EXAMPLE.read_text("utf-8"))
    return {p["id"]: p["ids"][BOT] for p in raw["people"]}


def _example_names() -> dict[str, str]:
    return {p["id"]: p["name"] for p in tomllib.loads(EXAMPLE.read_text("utf-8"))["people"]}


def _everyone_but(*gone: str, extra: tuple[Member, ...] = (), inactive: tuple[str, ...] = ()) -> list[Member]:
    ids, names = _example_ids(), _example_names()
    kept = [
        Member(ext, names[pid], ("运营部",), pid not in inactive)
        for pid, ext in ids.items()
        if pid not in gone
    ]
    return kept + list(extra)


NEW = Member("XiaoMing", "小明", ("客服部",), True)
NEW_GONE = Member("Resigned1", "已离职", ("客服部",), False)


def test_a_pull_shows_newcomers_and_leavers(db, clock, demo_team):
    with transaction(db) as session:
        summary = record_pull(
            session,
            BOT,
            _everyone_but("zhaoqiang", extra=(NEW, NEW_GONE), inactive=("lilei",)),
            clock(),
            "zhangwei",
        )
        found_new = newcomers(session)
        found_gone = leavers(session)
    assert (summary.listed, summary.newcomers, summary.leavers) == (len(_example_ids()) + 1, 1, 2)
    assert [(n.external_id, n.name, n.suggested_id, n.existing) for n in found_new] == [
        ("XiaoMing", "小明", "xiaoming", False)
    ]
    assert sorted((lv.person_id, lv.why) for lv in found_gone) == [
        ("lilei", "inactive"),
        ("zhaoqiang", "gone"),
    ]
    with db() as session:
        audit = session.scalar(select(AuditLog).where(AuditLog.action == "directory.pull"))
    assert audit.actor == "zhangwei" and audit.detail == {
        "listed": summary.listed,
        "newcomers": 1,
        "leavers": 2,
    }


def test_a_bot_never_pulled_flags_no_one(db, clock, demo_team):
    with transaction(db) as session:
        record_pull(session, "feishu-other", [NEW], clock(), "admin")
        assert leavers(session) == []  # nobody is known on feishu-other: nobody can have left it


def test_a_second_pull_replaces_the_first(db, clock, demo_team):
    with transaction(db) as session:
        record_pull(session, BOT, _everyone_but("zhaoqiang"), clock(), "admin")
        record_pull(session, BOT, _everyone_but(), clock(), "admin")
        assert leavers(session) == [] and newcomers(session) == []


@pytest.mark.parametrize(
    "external_id, taken, suggested",
    [
        ("LiLei", set(), "lilei"),
        ("LiLei", {"lilei"}, "lilei-2"),
        ("LiLei", {"lilei", "lilei-2"}, "lilei-3"),
        ("ou_7dab8a3d3cdcc9da", set(), "ou_7dab8a3d3cdcc9da"),
        ("张三", set(), "person"),
        ("0102", set(), "0102"),
    ],
)
def test_the_suggested_person_id(external_id, taken, suggested):
    assert suggest_person_id(external_id, taken) == suggested


def test_adding_a_newcomer_makes_a_person_known_by_their_id_and_audits_it(db, clock, demo_team):
    with transaction(db) as session:
        record_pull(session, BOT, _everyone_but(extra=(NEW,)), clock(), "admin")
        added = add_people(
            session, [Choice(BOT, "XiaoMing", "xiaoming", "小明", "service", "customer_service", "new")],
            by="zhangwei", now=clock(),
        )  # fmt: skip
    assert added == ["xiaoming"]
    with db() as session:
        person = session.get(Person, "xiaoming")
        ident = session.get(Identity, (BOT, "XiaoMing"))
        audit = session.scalar(select(AuditLog).where(AuditLog.action == "person.add"))
        still_new = newcomers(session)
    assert (person.name, person.team_id, person.role, person.type, person.added_from) == (
        "小明", "service", "customer_service", "new", "directory",
    )  # fmt: skip
    assert ident.person_id == "xiaoming" and still_new == []
    assert (audit.actor, audit.subject, audit.detail["team"]) == ("zhangwei", "xiaoming", "service")


@pytest.mark.parametrize(
    "choice, problem",
    [
        (
            Choice(BOT, "XiaoMing", "lilei", "小明", "service", "customer_service"),
            "人员 lilei 在 wecom-main 上已有账号 LiLei",
        ),
        (Choice(BOT, "XiaoMing", "小明", "小明", "service", "customer_service"), "人员 ID 只能用字母"),
        (Choice(BOT, "XiaoMing", "xm", "小明", "nope", "customer_service"), "请选择一个团队"),
        (Choice(BOT, "XiaoMing", "xm", "小明", "service", "pilot"), "岗位 pilot 不存在"),
        (
            Choice(BOT, "XiaoMing", "xm", "小明", "service", "customer_service", "intern"),
            "类型应为新人或老员工",
        ),
        (Choice(BOT, "Nobody", "xm", "某人", "service", "customer_service"), "已不在通讯录里，请重新拉取"),
        (Choice(BOT, "LiLei", "xm", "李雷", "service", "customer_service"), "已经是系统里的人员"),
    ],
)
def test_a_bad_choice_is_named_and_nothing_is_added(db, clock, demo_team, choice, problem):
    with transaction(db) as session:
        record_pull(session, BOT, _everyone_but(extra=(NEW,)), clock(), "admin")
    fine = Choice(BOT, "XiaoMing", "xiaoming", "小明", "service", "customer_service")
    with db() as session, pytest.raises(DirectoryChoiceError) as info:
        add_people(
            session, [fine, choice] if choice.external_id != "XiaoMing" else [choice], by="a", now=clock()
        )
    assert problem in str(info.value)
    with db() as session:
        assert session.get(Person, "xiaoming") is None and session.get(Person, "xm") is None


def test_the_same_id_twice_in_one_submit_is_refused(db, clock, demo_team):
    other = Member("XiaoHong", "小红", ("客服部",), True)
    with transaction(db) as session:
        record_pull(session, BOT, _everyone_but(extra=(NEW, other)), clock(), "admin")
        twice = [
            Choice(BOT, "XiaoMing", "xm", "小明", "service", "customer_service"),
            Choice(BOT, "XiaoHong", "xm", "小红", "service", "customer_service"),
        ]
        with pytest.raises(DirectoryChoiceError, match="人员 ID xm 在这次提交里用了两次"):
            add_people(session, twice, by="a", now=clock())


def test_an_existing_person_without_an_id_on_that_bot_gains_it(db, clock, demo_team):
    with transaction(db) as session:
        session.delete(session.get(Identity, (BOT, "LiLei")))
        record_pull(session, BOT, _everyone_but(), clock(), "admin")
        (found,) = newcomers(session)
        assert (found.external_id, found.suggested_id, found.existing) == ("LiLei", "lilei", True)  # by name
        add_people(session, [Choice(BOT, "LiLei", "lilei", "李雷", "", "")], by="zhangwei", now=clock())
    with db() as session:
        assert session.get(Identity, (BOT, "LiLei")).person_id == "lilei"
        assert session.get(Person, "lilei").added_from is None  # still the file's person
        audit = session.scalar(select(AuditLog).where(AuditLog.action == "person.link"))
    assert audit.detail == {"bot": BOT, "id": "LiLei"}


def test_deactivating_a_leaver_keeps_their_history_and_is_audited(db, clock, demo_team):
    with transaction(db) as session:
        record_pull(session, BOT, _everyone_but("zhaoqiang"), clock(), "admin")
        assert (
            deactivate(session, "zhaoqiang", by="zhangwei", now=clock(), reason="通讯录里已没有此人").active
            is False
        )
        assert deactivate(session, "zhaoqiang", by="zhangwei", now=clock(), reason="again") is None
        assert leavers(session) == []
    with db() as session:
        assert session.get(Identity, (BOT, _example_ids()["zhaoqiang"])).person_id == "zhaoqiang"
        audit = session.scalar(select(AuditLog).where(AuditLog.action == "person.deactivate"))
    assert (audit.actor, audit.subject, audit.detail) == (
        "zhangwei",
        "zhaoqiang",
        {"reason": "通讯录里已没有此人"},
    )


def test_apply_of_a_file_without_someone_from_the_directory_keeps_them_and_says_so(
    db, clock, demo_team, team_spec
):
    with transaction(db) as session:
        record_pull(session, BOT, _everyone_but(extra=(NEW,)), clock(), "admin")
        add_people(session, [Choice(BOT, "XiaoMing", "xiaoming", "小明", "service", "customer_service")],
                   by="admin", now=clock())  # fmt: skip
    with transaction(db) as session:
        report = apply(session, team_spec, now=clock())
    assert report.changes == []
    assert report.warnings == ["person xiaoming: not in this file, kept (added from the directory)"]
    with db() as session:
        assert session.get(Person, "xiaoming").active is True
    # a file person left out is still deactivated, as before
    raw = tomllib.loads(EXAMPLE.read_text("utf-8"))
    raw["people"] = [p for p in raw["people"] if p["id"] != "zhaoqiang"]
    with transaction(db) as session:
        report = apply(session, parse(raw), now=clock())
    assert "- person zhaoqiang (deactivated, history kept)" in report.changes


def test_two_picks_for_one_person_or_one_member_are_named_not_a_crash(db, clock, demo_team):
    twin = Member("XiaoMing2", "小明", ("客服部",), True)
    with transaction(db) as session:
        record_pull(session, BOT, _everyone_but(extra=(NEW, twin)), clock(), "admin")
        both_to_one = [
            Choice(BOT, "XiaoMing", "lilei", "小明", "", ""),
            Choice(BOT, "XiaoMing2", "lilei", "小明", "", ""),
        ]
        with pytest.raises(DirectoryChoiceError) as info:
            add_people(session, both_to_one, by="a", now=clock())
        assert "人员 lilei 在 wecom-main 上已有账号 LiLei" in str(info.value)
        session.delete(session.get(Identity, (BOT, "LiLei")))
        session.flush()
        with pytest.raises(DirectoryChoiceError, match="人员 ID lilei 在这次提交里用了两次"):
            add_people(session, both_to_one, by="a", now=clock())
        twice = [Choice(BOT, "XiaoMing", "xm", "小明", "service", "customer_service")] * 2
        with pytest.raises(DirectoryChoiceError, match="在这次提交里出现了两次"):
            add_people(session, twice, by="a", now=clock())


def test_a_namesake_is_never_suggested_as_someone_already_here(db, clock, demo_team):
    """Two 李雷 in the directory and 李雷 here without a WeCom id: neither is offered lilei's account."""
    namesake = Member("LiLei2", "李雷", ("仓储部",), True)
    with transaction(db) as session:
        session.delete(session.get(Identity, (BOT, "LiLei")))
        session.flush()
        record_pull(session, BOT, _everyone_but(extra=(namesake,)), clock(), "admin")
        found = {n.external_id: (n.suggested_id, n.existing) for n in newcomers(session)}
    assert found == {"LiLei": ("lilei-2", False), "LiLei2": ("lilei2", False)}


def test_deactivating_a_leader_leaves_the_team_without_one_and_the_export_applies(db, clock, demo_team):
    from handlers.config_export import export, render

    with transaction(db) as session:
        deactivate(session, "zhangwei", by="chenjing", now=clock(), reason="离职")
    with db() as session:
        audit = session.scalar(select(AuditLog).where(AuditLog.action == "person.deactivate"))
        from storage.models import Team

        assert session.get(Team, "ops").leader_id is None
        text = render(export(session), [])
    assert audit.detail == {"reason": "离职", "no_longer_leads": ["ops"]}
    with transaction(db) as session:
        assert apply(session, parse(tomllib.loads(text)), now=clock()).changes == []


def test_a_team_the_file_lacks_stays_while_console_people_are_in_it(db, clock, demo_team, team_spec):
    from handlers.config_export import export, render
    from handlers.team_edits import save_team

    with transaction(db) as session:
        save_team(session, {"id": "cs2", "name": "客服二组"}, by="admin", now=clock())
        record_pull(session, BOT, _everyone_but(extra=(NEW,)), clock(), "admin")
        add_people(session, [Choice(BOT, "XiaoMing", "xiaoming", "小明", "cs2", "customer_service")],
                   by="admin", now=clock())  # fmt: skip
    with transaction(db) as session:
        report = apply(session, team_spec, now=clock())
    assert "team cs2: not in this file, kept (people added in the console are in it)" in report.warnings
    with db() as session:
        text = render(export(session), [])
    with transaction(db) as session:
        assert apply(session, parse(tomllib.loads(text)), now=clock()).changes == []
