"""The console's Data page: who sees it, freshness per metric and scope, pull now (the worker's
poll, audited), and a report upload previewed before it is stored, with hostile files refused in zh-CN."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.config import Secret, Settings, SourceConfig
from storage.models import AuditLog, MetricSample, SourceRun
from tests.conftest import TEST_KEY
from tests.test_console import ADMIN, LEADER, MEMBER, csrf_of, sign_in

GOOD = "date,metric,value,scope\n2026-11-22,pay_conversion_rate,3.10%,shop\n2026-11-22,ctr,5.2%,shop\n"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "day.csv").write_text("date,metric,value,scope\n2026-11-22,ctr,6.5%,shop\n", encoding="utf-8")
    return Settings(
        database_url="sqlite://",
        simulator=True,
        secret_keys=(Secret(TEST_KEY),),
        public_url="http://planloop.test",
        extra={"admins": [ADMIN], "console_upload_dir": str(tmp_path / "uploads")},
        sources=(SourceConfig("inbox", "file", {"path": str(inbox)}, {}),),
    )


def upload(client, csrf: str, body: bytes, name: str = "report.csv", source: str = ""):  # noqa: ANN001, ANN201
    """The form's POST; a stored upload answers 303 to its preview page, which is what comes back."""
    data = {"_csrf": csrf, "source": source, "file": (io.BytesIO(body), name)}
    res = client.post("/console/data/upload", data=data, content_type="multipart/form-data")
    if res.status_code == 303 and "/console/data/preview?upload=" in res.headers["Location"]:
        return client.get(res.headers["Location"])
    return res


def banner(client, res) -> str:  # noqa: ANN001
    assert res.status_code == 303, res.status_code
    body = client.get(res.headers["Location"]).get_data(as_text=True)
    found = re.search(r'<div class="banner[^"]*" role="status">([^<]*)</div>', body)
    return found.group(1) if found else ""


@pytest.mark.parametrize("who, status", [(ADMIN, 200), (LEADER, 200), (MEMBER, 403), (None, 302)])
def test_who_may_open_the_data_page(client, services, demo_team, who, status):  # noqa: ANN001
    if who:
        sign_in(client, services, who)
    assert client.get("/console/data").status_code == status


def test_admin_sees_sources_leader_only_freshness(client, app, services, demo_team):  # noqa: ANN001
    sign_in(client, services, ADMIN)
    body = client.get("/console/data").get_data(as_text=True)
    assert 'id="source-inbox"' in body and "从未运行" in body and "上传报表" in body
    assert "pay_conversion_rate" in body  # the demo's history, newest day per metric and scope
    leader = app.test_client()
    sign_in(leader, services, LEADER)
    body = leader.get("/console/data").get_data(as_text=True)
    assert "pay_conversion_rate" in body and "source-inbox" not in body and "上传报表" not in body


@pytest.mark.parametrize("who, status", [(ADMIN, 303), (LEADER, 403), (MEMBER, 403)])
def test_who_may_pull_and_upload(client, services, demo_team, who, status):  # noqa: ANN001
    csrf = sign_in(client, services, who)
    assert client.post("/console/data/pull", data={"_csrf": csrf, "source": "inbox"}).status_code == status
    assert upload(client, csrf, GOOD.encode()).status_code == (200 if status == 303 else 403)


def test_pull_now_runs_the_workers_poll_and_is_audited(client, db, services, demo_team):  # noqa: ANN001
    csrf = sign_in(client, services, ADMIN)
    assert (
        banner(client, client.post("/console/data/pull", data={"_csrf": csrf, "source": "inbox"}))
        == "已拉取。"
    )
    with db() as session:
        sample = session.get(MetricSample, ("ctr", "shop", date(2026, 11, 22)))
        assert sample is not None and sample.value == Decimal("6.5") and sample.source == "inbox"
        assert session.scalars(select(SourceRun.source_id)).all() == ["inbox"]
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "source.pull")).one()
        assert (audit.actor, audit.subject, audit.detail["status"]) == (ADMIN, "source inbox", "done")
    body = client.get("/console/data").get_data(as_text=True)
    assert "从未运行" not in body
    assert client.post("/console/data/pull", data={"_csrf": csrf, "source": "nope"}).status_code == 400


def test_upload_previews_then_confirm_stores_the_same_file(client, db, services, demo_team, tmp_path):  # noqa: ANN001
    csrf = sign_in(client, services, ADMIN)
    before = _count(db)
    res = upload(client, csrf, GOOD.encode())
    body = res.get_data(as_text=True)
    assert res.status_code == 200 and 'id="preview-count">2<' in body and "确认导入 2 个数据点" in body
    assert _count(db) == before  # the preview writes nothing
    upload_id = re.search(r'name="upload" value="([0-9a-f]{32})"', body).group(1)
    kept = list((tmp_path / "uploads").iterdir())
    assert sorted(p.name for p in kept) == sorted([f"{upload_id}.csv", f"{upload_id}.json"])
    assert (
        banner(
            client, client.post("/console/data/confirm", data={"_csrf": csrf_of(body), "upload": upload_id})
        )
        == "已导入。"
    )
    with db() as session:
        assert session.get(MetricSample, ("ctr", "shop", date(2026, 11, 22))).value == Decimal("5.2")
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "import.file")).one()
        assert (audit.detail["loaded"], audit.detail["source"], len(audit.detail["digest"])) == (2, "", 64)
    assert list((tmp_path / "uploads").iterdir()) == []  # spent
    again = client.post("/console/data/confirm", data={"_csrf": csrf, "upload": upload_id})
    assert banner(client, again) == "这个上传已过期或不存在，请重新上传文件"


def test_the_progress_script_gets_the_preview_address_and_only_the_uploader_opens_it(
    client, app, services, demo_team
):  # noqa: ANN001
    csrf = sign_in(client, services, ADMIN)
    data = {"_csrf": csrf, "source": "", "file": (io.BytesIO(GOOD.encode()), "report.csv")}
    res = client.post("/console/data/upload", data=data, content_type="multipart/form-data",
                      headers={"X-Planloop-Upload": "1"})  # fmt: skip
    assert res.status_code == 200 and res.is_json
    preview = res.get_json()["next"]
    assert re.fullmatch(r"/console/data/preview\?upload=[0-9a-f]{32}", preview)
    assert 'id="preview-count">2<' in client.get(preview).get_data(as_text=True)
    assert 'id="preview-count">2<' in client.get(preview).get_data(as_text=True)  # a refresh: the same
    # a leader may not upload at all; a second admin cannot open the first one's upload either
    leader = app.test_client()
    sign_in(leader, services, LEADER)
    assert leader.get(preview).status_code == 403
    services.settings = replace(
        services.settings, extra={**services.settings.extra, "admins": [ADMIN, "wangfang"]}
    )
    second = app.test_client()
    sign_in(second, services, "wangfang")
    assert banner(second, second.get(preview)) == "这个上传已过期或不存在，请重新上传文件"


@pytest.mark.parametrize(
    "upload_id",
    ["../../etc/passwd", "0" * 32, "", "A" * 32],
)
def test_confirm_never_follows_a_client_path(client, services, demo_team, upload_id):  # noqa: ANN001
    csrf = sign_in(client, services, ADMIN)
    res = client.post("/console/data/confirm", data={"_csrf": csrf, "upload": upload_id})
    assert banner(client, res) == "这个上传已过期或不存在，请重新上传文件"


def test_an_upload_expires_and_a_changed_file_is_refused(client, services, clock, demo_team, tmp_path):  # noqa: ANN001
    csrf = sign_in(client, services, ADMIN)
    body = upload(client, csrf, GOOD.encode()).get_data(as_text=True)
    upload_id = re.search(r'name="upload" value="([0-9a-f]{32})"', body).group(1)
    (tmp_path / "uploads" / f"{upload_id}.csv").write_text(GOOD.replace("3.10", "9.99"), encoding="utf-8")
    res = client.post("/console/data/confirm", data={"_csrf": csrf, "upload": upload_id})
    assert banner(client, res) == "上传的文件在预览后被改动过，请重新上传"
    body = upload(client, csrf, GOOD.encode()).get_data(as_text=True)
    upload_id = re.search(r'name="upload" value="([0-9a-f]{32})"', body).group(1)
    clock.advance(minutes=61)
    res = client.post("/console/data/confirm", data={"_csrf": csrf, "upload": upload_id})
    assert banner(client, res) == "这个上传已过期或不存在，请重新上传文件"


HOSTILE = {
    "wrong type": ("report.exe", b"MZ\x90\x00", "不支持的文件类型“.exe”：请上传 CSV、XLSX 或 XLS 报表"),
    "no extension": ("report", b"a,b\n", "不支持的文件类型“无扩展名”：请上传 CSV、XLSX 或 XLS 报表"),
    "empty": ("report.csv", b"", "文件是空的"),
}


@pytest.mark.parametrize("name, body, error", HOSTILE.values(), ids=list(HOSTILE))
def test_hostile_uploads_get_a_zh_cn_banner(client, services, demo_team, name, body, error):  # noqa: ANN001
    csrf = sign_in(client, services, ADMIN)
    assert banner(client, upload(client, csrf, body, name)) == error


def test_oversize_upload_is_refused_before_it_is_kept(client, services, demo_team, tmp_path):  # noqa: ANN001
    from dataclasses import replace

    services.settings = replace(
        services.settings,
        sources=(SourceConfig("tiny", "file", {"path": str(tmp_path), "max_file_mb": 1}, {}),),
    )
    csrf = sign_in(client, services, ADMIN)
    big = GOOD.encode() + b"2026-11-21,ctr,5.0%,shop\n" * 50_000  # ~1.3 MB
    message = banner(client, upload(client, csrf, big, source="tiny"))
    assert message == "文件超过 1 MB 的上限（max_file_mb）"
    assert not list((tmp_path / "uploads").glob("*.csv"))


@pytest.mark.parametrize(
    "name, body, shown",
    [
        ("broken.xlsx", b"PK\x03\x04 not really a zip", "文件无法导入"),
        ("broken.csv", b"\x00\x01\x02\xff\xfe garbage", "没有可导入的数据点"),
    ],
)
def test_broken_files_preview_as_refusals(client, services, demo_team, name, body, shown):  # noqa: ANN001
    csrf = sign_in(client, services, ADMIN)
    res = upload(client, csrf, body, name)
    text = res.get_data(as_text=True)
    assert res.status_code == 200 and shown in text and 'id="confirm"' not in text


def test_formula_cells_are_shown_as_text(client, services, demo_team):  # noqa: ANN001
    csrf = sign_in(client, services, ADMIN)
    hostile = GOOD + '2026-11-22,ctr,4%,"=HYPERLINK(""http://evil"",""<b>x</b>"")"\n'
    text = upload(client, csrf, hostile.encode()).get_data(as_text=True)
    assert (
        "<b>x</b>" not in text and "=HYPERLINK(&#34;http://evil&#34;,&#34;&lt;b&gt;x&lt;/b&gt;&#34;)" in text
    )


def _count(db) -> int:  # noqa: ANN001
    with db() as session:
        return len(session.scalars(select(MetricSample.metric)).all())


def test_a_failing_pull_shows_the_sources_error(client, services, demo_team, tmp_path):  # noqa: ANN001
    from dataclasses import replace

    services.settings = replace(
        services.settings, sources=(SourceConfig("gone", "file", {"path": str(tmp_path / "nowhere")}, {}),)
    )
    csrf = sign_in(client, services, ADMIN)
    message = banner(client, client.post("/console/data/pull", data={"_csrf": csrf, "source": "gone"}))
    assert message.startswith("拉取 gone 失败：") and "nowhere" in message
    assert "nowhere" in client.get("/console/data").get_data(as_text=True)  # the source's last run error


def test_an_aftersales_export_previews_its_cases(client, db, services, demo_team, tmp_path):  # noqa: ANN001
    from dataclasses import replace

    from storage.models import AftersaleCase

    source = SourceConfig("pdd-after", "file", {"path": str(tmp_path), "preset": "aftersales"}, {})
    services.settings = replace(services.settings, sources=(source,))
    csrf = sign_in(client, services, ADMIN)
    fixture = Path(__file__).parent / "fixtures" / "aftersales" / "pdd_aftersales.csv"
    res = upload(client, csrf, fixture.read_bytes(), "pdd_aftersales.csv", source="pdd-after")
    body = res.get_data(as_text=True)
    cases = int(re.search(r"、(\d+) 条售后记录", body).group(1))
    assert res.status_code == 200 and cases > 0 and 'id="confirm"' in body
    upload_id = re.search(r'name="upload" value="([0-9a-f]{32})"', body).group(1)
    with db() as session:
        assert session.scalars(select(AftersaleCase)).all() == []
    assert (
        banner(client, client.post("/console/data/confirm", data={"_csrf": csrf, "upload": upload_id}))
        == "已导入。"
    )
    with db() as session:
        assert len(session.scalars(select(AftersaleCase)).all()) == cases


def test_a_leader_cannot_push_a_large_body(client, services, demo_team):  # noqa: ANN001
    csrf = sign_in(client, services, LEADER)
    res = upload(client, csrf, b"x" * (2 << 20))
    assert res.status_code == 413 and "文件太大" in res.get_data(as_text=True)
