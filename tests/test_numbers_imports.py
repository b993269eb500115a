"""Issue 16: data as shops export it — presets, date ranges, encodings, unknown keys, 100×-off percents.

The fixtures follow the column lists in ../shared/SOURCES.md §5 (拼多多 交易概况, 生意参谋 商品, the
生意参谋 all-metrics export) and the issue's 京东商智 names; each is written in the encoding the
platform uses (GBK for 生意参谋 and 拼多多 CSV).
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli.commands import main
from storage.models import MetricSample

PDD = """统计时间,成交金额,成交买家数,客单价,成交转化率,店铺关注用户数,成交订单数,成交老买家占比,退款金额,退款单数
2026-11-27~2026-11-27,"8,000.50元",40,200.01元,3.30%,12,45,20.00%,150元,2
2026-11-28~2026-11-28,"9,100.00元",44,206.82元,3.40%,15,50,22.00%,0元,0
"""
JD = """日期,访客数,浏览量,成交金额,成交客单价,成交单量,成交商品件数,成交转化率,下单客户数
2026-11-27,"1,200","3,600","7,500.00",187.50,40,52,3.33%,45
"""
SYCM_ITEM = """【生意参谋平台】商品_全部_2026-11-27_2026-11-27
统计日期,商品ID,商品名称,商品访客数,商品浏览量,支付金额,支付件数,支付转化率
2026-11-27,60012345,冬季加厚围巾,320,960,"1,250.00",25,7.81%
2026-11-27,60012346,羊毛手套,180,400,360.00,9,5.00%
"""
SYCM_ALL = """统计日期,访客数,浏览量,商品访客数,商品浏览量,平均停留时长,跳失率,加购人数,支付金额,支付买家数,支付转化率,客单价,UV价值
2026-11-27,"1,000","2,500",900,"2,200",35,45.00%,60,"8,000.00",33,3.30%,242.42,8.00
"""


@pytest.fixture
def config(tmp_path, engine):
    url = engine.url.render_as_string(hide_password=False)
    path = tmp_path / "planloop.toml"
    sources = "".join(
        f'\n[[sources]]\nid = "{sid}"\nkind = "file"\npath = "{tmp_path / sid}"\npreset = "{preset}"\n'
        for sid, preset in (("pdd", "pdd"), ("jd", "jd"), ("sycm", "sycm"))
    )
    path.write_text(
        f'[server]\ndatabase_url = "{url}"\nsecret_key = "vExb5JuV_czKxZS0p-hDWNIgfPEeCPHkEzIkVmJknLA="\n'
        + sources,
        "utf-8",
    )
    return str(path)


def _import(config: str, capsys, path: Path, source: str | None = None) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--config", config, "import", str(path), *(["--source", source] if source else [])])
    out, err = capsys.readouterr()
    return code, out, err


def _values(db, scope: str = "shop") -> dict[tuple[str, date], Decimal]:
    with db() as s:
        rows = s.execute(
            select(MetricSample.metric, MetricSample.day, MetricSample.value).where(
                MetricSample.scope == scope, MetricSample.source != "demo"
            )
        )
        return {(m, d): v for m, d, v in rows}


def test_pdd_statistics_time_yuan_and_one_day_ranges(db, demo_team, config, capsys, tmp_path):
    path = tmp_path / "拼多多_交易概况.csv"
    path.write_bytes(PDD.encode("gbk"))
    code, out, err = _import(config, capsys, path, "pdd")
    assert code == 0, err
    got = _values(db)
    assert got[("pay_amount", date(2026, 11, 27))] == Decimal("8000.50")
    assert got[("avg_order_value", date(2026, 11, 27))] == Decimal("200.01")
    assert got[("pay_conversion_rate", date(2026, 11, 28))] == Decimal("3.40")
    assert got[("refund_amount", date(2026, 11, 28))] == Decimal("0")
    assert (
        "未导入的列：成交老买家占比、退款单数、店铺关注用户数（无对应指标）、成交订单数（无对应指标）" in out
    )


def test_jd_avg_order_value_orders_and_units(db, demo_team, config, capsys, tmp_path):
    path = tmp_path / "京东商智.csv"
    path.write_text(JD, "utf-8-sig")
    code, out, err = _import(config, capsys, path, "jd")
    assert code == 0, err
    day = date(2026, 11, 27)
    got = _values(db)
    assert (got[("avg_order_value", day)], got[("orders", day)], got[("units_sold", day)]) == (
        Decimal("187.50"),
        Decimal("40"),
        Decimal("52"),
    )
    assert got[("visitors", day)] == Decimal("1200")
    assert "未导入的列：下单客户数（无对应指标）" in out


def test_sycm_item_report_and_the_all_metrics_export(db, demo_team, config, capsys, tmp_path):
    item = tmp_path / "【生意参谋平台】商品_全部_2026-11-27_2026-11-27.csv"
    item.write_bytes(SYCM_ITEM.encode("gbk"))
    code, out, err = _import(config, capsys, item, "sycm")
    assert code == 0, err
    day = date(2026, 11, 27)
    assert _values(db, "60012345")[("visitors", day)] == Decimal("320")
    assert _values(db, "60012346")[("page_views", day)] == Decimal("400")
    whole = tmp_path / "店铺整体.csv"
    whole.write_bytes(SYCM_ALL.encode("gbk"))
    code, out, err = _import(config, capsys, whole, "sycm")
    assert code == 0, err
    assert _values(db)[("visitors", day)] == Decimal("1000")  # 访客数, not 商品访客数
    assert "商品访客数（与「访客数」同为 visitors，未用）" in out and "平均停留时长" in out


@pytest.mark.parametrize(
    ("codec", "bom", "expected"),
    [
        ("big5", b"", "文件编码是 Big5（繁体中文），不是 UTF-8、GBK/GB18030 或 UTF-16"),
        ("shift_jis", b"", "文件编码是 Shift_JIS（日文），不是 UTF-8、GBK/GB18030 或 UTF-16"),
        ("utf-16-le", b"", "文件编码看起来是不带 BOM 的 UTF-16LE"),
    ],
)
def test_a_file_in_another_encoding_names_the_encoding(
    db, demo_team, config, capsys, tmp_path, codec, bom, expected
):
    text = "統計日期,訪客數,支付金額\n2026-11-27,1000,8000.00\n" if codec != "utf-16-le" else SYCM_ALL
    if codec == "shift_jis":
        text = "統計日期,訪客数\n2026-11-27,1000\n"
    path = tmp_path / "report.csv"
    path.write_bytes(bom + text.encode(codec))
    code, out, err = _import(config, capsys, path, "sycm")
    assert code == 1
    assert expected in err and "找不到表头" not in err


def test_unknown_metric_keys_are_refused_with_the_known_keys(db, demo_team, config, capsys, tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(
        "date,metric,value,备注\n2026-11-27,nosuch,1,\n2026-11-27,conversion_rate,3.3%,\n2026-11-27,orders,40,手工\n",
        "utf-8",
    )
    code, out, err = _import(config, capsys, path)
    assert code == 1
    assert "未导入的列：备注" in out
    lines = err.splitlines()
    assert lines[0].startswith("long.csv 第 2 行「metric」列：不认识的指标键“nosuch”：已知的指标键：")
    assert "pay_conversion_rate" in lines[0] and "units_sold" in lines[0]
    assert "“conversion_rate”是 KPI 的键，它的指标键是 pay_conversion_rate" in lines[1]
    assert _values(db) == {("orders", date(2026, 11, 27)): Decimal("40")}


def test_a_percent_column_100_times_off_its_history_is_refused(db, demo_team, config, capsys, tmp_path):
    history = tmp_path / "before.csv"
    history.write_bytes(SYCM_ALL.replace("2026-11-27", "2026-11-26").encode("gbk"))
    assert _import(config, capsys, history, "sycm")[0] == 0
    fraction = tmp_path / "after.csv"
    fraction.write_bytes(SYCM_ALL.replace("3.30%", "0.0321").replace("45.00%", "45.10%").encode("gbk"))
    code, out, err = _import(config, capsys, fraction, "sycm")
    assert code == 1
    # the history: the demo's four weeks (about 3.0) and the day before (3.30)
    assert (
        "after.csv「支付转化率」列：「支付转化率」约为已有数据的 1/100（本次中位数 0.0321，之前 2.99）" in err
    )
    assert "可能是把百分数存成了小数" in err
    got = _values(db)
    assert ("pay_conversion_rate", date(2026, 11, 27)) not in got
    assert got[("bounce_rate", date(2026, 11, 27))] == Decimal("45.10")  # the other columns load


def test_a_scheduled_poll_refuses_a_misscaled_percent_column_too(db, demo_team, config, capsys, tmp_path):
    from storage.models import SourceRun

    history = tmp_path / "before.csv"
    history.write_bytes(SYCM_ALL.replace("2026-11-27", "2026-11-26").encode("gbk"))
    assert _import(config, capsys, history, "sycm")[0] == 0
    folder = tmp_path / "sycm"
    folder.mkdir()
    (folder / "店铺整体_2026-11-27.csv").write_bytes(SYCM_ALL.replace("3.30%", "0.0321").encode("gbk"))
    capsys.readouterr()
    main(["--config", config, "run", "poll", "--at", "2026-11-28T09:00"])
    got = _values(db)
    assert ("pay_conversion_rate", date(2026, 11, 27)) not in got
    assert got[("visitors", date(2026, 11, 27))] == Decimal("1000")
    with db() as s:
        run = s.scalars(
            select(SourceRun).where(SourceRun.source_id == "sycm").order_by(SourceRun.id.desc())
        ).first()
        assert "约为已有数据的 1/100" in json.dumps(run.detail, ensure_ascii=False) + run.error
