"""Report files: every encoding and shape real exports come in, presets, refused rows, folder sources."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from bot.config import SourceConfig
from sources import build
from sources.base import MemoryState, NeedsAdmin, SourceDeps, Window
from sources.files import ReportOptions, read_report, sniff_kind
from sources.presets import preset_for

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
FIXTURES = Path(__file__).parent / "fixtures"
D20, D21, D22 = date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)

# A 生意参谋 店铺整体 export as people download it: a title, a time range, a blank line, then the
# header; thousands separators, currency, percent strings, "-", "--", empty cells, a bad cell,
# a totals row and a trailing note.
SYCM_CSV = """【生意参谋平台】店铺整体_全部_2026-11-20_2026-11-22
统计时间：2026-11-20 ~ 2026-11-22

统计日期,店铺名,访客数,浏览量,支付金额,支付买家数,支付转化率,客单价,退款金额,跳失率,商品访客数
2026-11-20,小店,"7,001",12000,"￥35,000.10",230,3.25%,152.17,-,45.10%,5000
2026-11-21,小店,6500,--,"30,000",200,3.08%,150,120.5,,4800
2026-11-22,小店,abc,11000,"32,000",210,3.2%,152.38,0,44%,4900
合计,小店,"20,001",23000,"97,000.10",640,3.18%,151.56,120.5,44.5%,14700
数据来源：生意参谋
"""

SYCM_EXPECTED = {
    ("visitors", "shop", D20): Decimal("7001"),
    ("page_views", "shop", D20): Decimal("12000"),
    ("pay_amount", "shop", D20): Decimal("35000.10"),
    ("pay_buyers", "shop", D20): Decimal("230"),
    ("pay_conversion_rate", "shop", D20): Decimal("3.25"),
    ("avg_order_value", "shop", D20): Decimal("152.17"),
    ("bounce_rate", "shop", D20): Decimal("45.10"),
    ("visitors", "shop", D21): Decimal("6500"),
    ("pay_amount", "shop", D21): Decimal("30000"),
    ("pay_buyers", "shop", D21): Decimal("200"),
    ("pay_conversion_rate", "shop", D21): Decimal("3.08"),
    ("avg_order_value", "shop", D21): Decimal("150"),
    ("refund_amount", "shop", D21): Decimal("120.5"),
}


def as_map(samples: list) -> dict:
    return {(s.metric, s.scope, s.date): s.value for s in samples}


def read(path: Path, preset: str = "sycm", scope_column: str = "", **columns: str):
    options = ReportOptions(preset_for(preset, columns or None, scope_column=scope_column), "shop", "t")
    return read_report(path, options, NOW)


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("gbk", "gb18030"), ("gb18030", "gb18030"), ("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig")],
)
def test_sycm_csv_in_every_encoding(tmp_path: Path, encoding: str, detected: str) -> None:
    path = tmp_path / "店铺整体.csv"
    path.write_bytes(SYCM_CSV.encode(encoding))
    r = read(path)
    assert r.detail["encoding"] == detected
    assert as_map(r.samples) == SYCM_EXPECTED
    # the bad cell names its file, physical line and column; the row is refused, the others load
    assert [(e.file, e.line, e.column) for e in r.errors] == [("店铺整体.csv", 7, "访客数")]
    assert "abc" in r.errors[0].reason
    assert (r.rows_read, r.rows_refused, r.rows_skipped, r.rows_loaded) == (5, 1, 2, 2)
    assert r.detail["header_line"] == 4


def test_utf16_tab_separated_export(tmp_path: Path) -> None:
    """Excel's "Unicode text" save: UTF-16 with a BOM, tab-separated."""
    text = "统计日期\t访客数\t支付转化率\r\n2026-11-20\t1,200\t2.5%\r\n"
    path = tmp_path / "x.txt"
    path.write_bytes(text.encode("utf-16"))
    r = read(path)
    assert r.detail["encoding"] == "utf-16"
    assert as_map(r.samples) == {
        ("visitors", "shop", D20): Decimal("1200"),
        ("pay_conversion_rate", "shop", D20): Decimal("2.5"),
    }


def test_undecodable_file_is_refused_not_guessed(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_bytes("统计日期,访客数\n2026-11-20,1\n".encode() + b"\xff\xfe\xff\x80\n")
    r = read(path)
    assert r.samples == []
    assert len(r.errors) == 1
    assert r.errors[0].file == "broken.csv"
    assert "UTF-8" in r.errors[0].reason and "GBK" in r.errors[0].reason


def _sycm_xlsx(path: Path) -> None:
    """An XLSX export: 7 title rows (one merged), percent-formatted numbers, a date column merged
    across two scope rows, numbers stored as text with separators, a totals row."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "店铺经营核心日报"
    ws["A1"] = "店铺经营核心日报"
    ws.merge_cells("A1:F1")
    ws["A2"] = "统计时间：2026-11-20 ~ 2026-11-21"
    for r in range(3, 8):
        ws.cell(r, 1, f"说明 {r}")
    ws.append(["统计日期", "店铺名称", "访客数", "支付金额", "支付转化率", "关键词推广花费"])
    ws.append([datetime(2026, 11, 20), "小店", 7001, "35,000.10", 0.0325, 100])
    ws.cell(9, 5).number_format = "0.00%"
    ws.append([datetime(2026, 11, 21), "小店", "6,500", "-", "3.08%", 90])
    ws.append([None, "小店", 6400, 100, None, None])  # date merged from the row above
    ws.merge_cells("A10:A11")
    ws.append(["合计", None, 19901, "35,100.10", None, 190])
    wb.save(path)


def test_xlsx_title_rows_merged_cells_percent_and_totals(tmp_path: Path) -> None:
    path = tmp_path / "日报.xlsx"
    _sycm_xlsx(path)
    r = read(path, scope_column="店铺名称")
    assert r.detail["format"] == "xlsx"
    assert r.detail["header_line"] == 8
    assert as_map(r.samples) == {
        ("visitors", "小店", D20): Decimal("7001"),
        ("pay_amount", "小店", D20): Decimal("35000.10"),
        ("pay_conversion_rate", "小店", D20): Decimal("3.25"),
        ("visitors", "小店", D21): Decimal("6500"),
        ("pay_conversion_rate", "小店", D21): Decimal("3.08"),
    }
    # the merged-date row repeats 2026-11-21 for the same shop with other numbers: refused, named
    assert [(e.line, e.column) for e in r.errors] == [(11, "访客数")]
    assert "第 10 行" in r.errors[0].reason
    assert r.rows_skipped == 1  # 合计


def test_xls_biff_export() -> None:
    r = read(FIXTURES / "sycm_trade.xls")
    assert r.detail["format"] == "xls"
    assert r.errors == []
    assert as_map(r.samples) == {
        ("visitors", "shop", D20): Decimal("5000"),
        ("pay_buyers", "shop", D20): Decimal("150"),
        ("pay_amount", "shop", D20): Decimal("22500.5"),
        ("pay_conversion_rate", "shop", D20): Decimal("3"),
        ("visitors", "shop", D21): Decimal("5200"),
        ("pay_buyers", "shop", D21): Decimal("160"),
        ("pay_amount", "shop", D21): Decimal("24000"),
        ("pay_conversion_rate", "shop", D21): Decimal("3.08"),
    }


def test_xls_that_is_really_html(tmp_path: Path) -> None:
    html = """<html><head><meta charset="gbk"></head><body><table>
    <tr><td colspan="3">【生意参谋平台】商品_全部_2026-11-20_2026-11-20</td></tr>
    <tr><th>统计日期</th><th>访客数</th><th>支付转化率</th></tr>
    <tr><td>2026-11-20</td><td>1,234</td><td>2.00%</td></tr>
    <tr><td>合计</td><td>1,234</td><td>2.00%</td></tr>
    </table></body></html>"""
    path = tmp_path / "【生意参谋平台】商品.xls"
    path.write_bytes(html.encode("gbk"))
    r = read(path)
    assert r.detail["format"] == "html"
    assert r.detail["encoding"] == "gb18030"
    assert as_map(r.samples) == {
        ("visitors", "shop", D20): Decimal("1234"),
        ("pay_conversion_rate", "shop", D20): Decimal("2.00"),
    }


def test_xls_that_is_really_csv(tmp_path: Path) -> None:
    path = tmp_path / "export.xls"
    path.write_bytes("统计日期,访客数\n2026-11-20,10\n".encode("gbk"))
    r = read(path)
    assert r.detail["format"] == "csv"
    assert as_map(r.samples) == {("visitors", "shop", D20): Decimal("10")}


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", "xls"),
        (b"PK\x03\x04rest", "xlsx"),
        (b"\xef\xbb\xbf<html><table>", "html"),
        (b"  <table><tr>", "html"),
        (b"date,metric,value", "csv"),
    ],
)
def test_sniff_kind(head: bytes, kind: str) -> None:
    assert sniff_kind(head) == kind


def test_generic_long_form_with_errors(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text(
        "date,metric,value,scope\n"
        "2026-11-22,pay_conversion_rate,3.00%,shop\n"
        "2026-11-22,complaint_rate,1.20%,\n"
        "2026-11-22,Bad Key,1,shop\n"
        "2026-13-01,ctr,1,shop\n"
        "2026-11-22,ctr,-,shop\n"
        '2026-11-22,activity_sales,"1,500",双11主会场\n',
        encoding="utf-8",
    )
    r = read(path, "generic")
    assert as_map(r.samples) == {
        ("pay_conversion_rate", "shop", D22): Decimal("3.00"),
        ("complaint_rate", "shop", D22): Decimal("1.20"),
        ("activity_sales", "双11主会场", D22): Decimal("1500"),
    }
    assert [(e.line, e.column) for e in r.errors] == [(4, "metric"), (5, "date")]
    assert r.rows_skipped == 1  # ctr "-" is a missing value, not an error


def test_generic_missing_value_column_refuses_file(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("date,metric\n2026-11-22,ctr\n", encoding="utf-8")
    r = read(path, "generic")
    assert r.samples == []
    assert r.errors[0].line == 1 and "value" in r.errors[0].reason


def test_no_header_row(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    r = read(path)
    assert r.samples == [] and "统计日期" in r.errors[0].reason


def test_header_with_no_known_metric(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("统计日期,奇怪的列\n2026-11-22,1\n", encoding="utf-8")
    r = read(path)
    assert r.samples == [] and "columns" in r.errors[0].reason


@pytest.mark.parametrize(
    ("preset", "text", "expected"),
    [
        (
            "pdd",
            '日期,店铺访客数,成交金额,成交买家数,成交转化率,成功退款金额\n2026-11-22,900,"8,800.50",40,4.44%,100\n',
            {
                "visitors": "900",
                "pay_amount": "8800.50",
                "pay_buyers": "40",
                "pay_conversion_rate": "4.44",
                "refund_amount": "100",
            },
        ),
        (
            "jd",
            '日期,访客数,浏览量,成交金额,成交客户数,成交转化率,客单价\n2026-11-22,1000,3000,"¥9,000",30,3.00%,300\n',
            {
                "visitors": "1000",
                "page_views": "3000",
                "pay_amount": "9000",
                "pay_buyers": "30",
                "pay_conversion_rate": "3.00",
                "avg_order_value": "300",
            },
        ),
        (
            "sycm",
            "统计日期, 支付金额（元） ,跳失率(%)\n2026-11-22,100,55.5\n",  # units in brackets, stray spaces
            {"pay_amount": "100", "bounce_rate": "55.5"},
        ),
    ],
)
def test_shop_presets(tmp_path: Path, preset: str, text: str, expected: dict[str, str]) -> None:
    path = tmp_path / f"{preset}.csv"
    path.write_text(text, encoding="utf-8")
    r = read(path, preset)
    assert r.errors == []
    assert as_map(r.samples) == {(m, "shop", D22): Decimal(v) for m, v in expected.items()}


def test_customer_service_preset_scopes_by_agent(tmp_path: Path) -> None:
    path = tmp_path / "客服绩效.csv"
    path.write_bytes(
        (
            "客服绩效报表\n"
            "日期,旺旺,咨询人数,询单人数,询单->最终付款成功率,平均响应(秒),首次响应时长\n"
            "2026-11-22,小店:阿美,120,60,45.50%,18.5,00:00:12\n"
            "2026-11-22,小店:阿强,80,40,40%,22,15秒\n"
            "2026-11-22,汇总,200,100,43.3%,20,13\n"
        ).encode("gbk")
    )
    r = read(path, "cs")
    assert r.errors == []
    assert as_map(r.samples) == {
        ("inquiry_conversion_rate", "小店:阿美", D22): Decimal("45.50"),
        ("avg_response_seconds", "小店:阿美", D22): Decimal("18.5"),
        ("first_response_seconds", "小店:阿美", D22): Decimal("12"),
        ("inquiry_conversion_rate", "小店:阿强", D22): Decimal("40"),
        ("avg_response_seconds", "小店:阿强", D22): Decimal("22"),
        ("first_response_seconds", "小店:阿强", D22): Decimal("15"),
    }
    assert r.rows_skipped == 1


def test_custom_columns_extend_and_override(tmp_path: Path) -> None:
    path = tmp_path / "erp.csv"
    path.write_text("日期,投诉率,错发率,咨询人数\n2026-11-22,1.2%,0.3%,55\n", encoding="utf-8")
    r = read(path, "custom", 投诉率="complaint_rate", 错发率="mis_shipment_rate", 咨询人数="consultations")
    assert as_map(r.samples) == {
        ("complaint_rate", "shop", D22): Decimal("1.2"),
        ("mis_shipment_rate", "shop", D22): Decimal("0.3"),
        ("consultations", "shop", D22): Decimal("55"),
    }


@pytest.mark.parametrize(
    ("name", "columns", "reason"),
    [
        ("nope", {}, "未知的 preset"),
        ("custom", {}, "columns"),
        ("sycm", {"访客数": "Visitors!"}, "指标键"),
    ],
)
def test_bad_preset_config(name: str, columns: dict[str, str], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        preset_for(name, columns)


def test_unquoted_thousands_separator_shifts_columns_and_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("统计日期,访客数,支付金额\n2026-11-22,6,900,100\n2026-11-21,10,20\n", encoding="utf-8")
    r = read(path)
    assert as_map(r.samples) == {
        ("visitors", "shop", D21): Decimal("10"),
        ("pay_amount", "shop", D21): Decimal("20"),
    }
    assert [(e.line, e.column) for e in r.errors] == [(2, "")] and "引号" in r.errors[0].reason


def test_identical_duplicate_rows_load_once(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("统计日期,访客数\n2026-11-22,10\n2026-11-22,10\n", encoding="utf-8")
    r = read(path)
    assert len(r.samples) == 1 and r.errors == []


def test_large_csv_reports_progress(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    lines = ["date,metric,value"] + [f"2026-11-22,m{i},{i}" for i in range(30_000)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    seen: list[tuple[int, int]] = []
    r = read_report(
        path, ReportOptions(preset_for("generic")), NOW, progress=lambda d, t: seen.append((d, t))
    )
    assert len(r.samples) == 30_000
    assert seen and seen[-1][0] == seen[-1][1]  # reaches 100 %
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))


# ---------------------------------------------------------------- the folder source


def _folder_source(folder: Path, state: MemoryState):
    config = SourceConfig(
        "shop-reports", "file", {"path": str(folder), "preset": "sycm", "scope": "shop"}, {}
    )
    return build(config, SourceDeps(state=state))


def test_folder_source_loads_each_content_once(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "a.csv").write_bytes(SYCM_CSV.encode("gbk"))
    (folder / "~$a.xlsx").write_bytes(b"lock file")
    (folder / "notes.pdf").write_bytes(b"%PDF")
    state = MemoryState()
    window = Window(D22, D22)

    first = _folder_source(folder, state).fetch(window, NOW)
    assert as_map(first.samples) == SYCM_EXPECTED
    assert list(first.detail["files"]) == ["a.csv"]
    for k, v in first.state.items():  # the caller persists these with the samples
        state.set(k, v)
    assert json.loads(next(iter(first.state.values())))["name"] == "a.csv"

    shutil.copy(folder / "a.csv", folder / "a (1).csv")  # re-copied under another name
    again = _folder_source(folder, state).fetch(window, NOW)
    assert again.samples == [] and again.detail["files"] == {}

    (folder / "b.csv").write_text("统计日期,访客数\n2026-11-23,99\n", encoding="utf-8")
    new = _folder_source(folder, state).fetch(window, NOW)
    assert as_map(new.samples) == {("visitors", "shop", date(2026, 11, 23)): Decimal("99")}


def test_folder_source_missing_path_needs_admin(tmp_path: Path) -> None:
    with pytest.raises(NeedsAdmin, match="找不到"):
        _folder_source(tmp_path / "nope", MemoryState()).fetch(Window(D22, D22), NOW)
