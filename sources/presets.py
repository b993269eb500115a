"""Header presets: each platform's Chinese report headers → metric keys. Matched by name, never position."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

METRIC_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
# A date cell (or, for per-person reports, a scope cell) that says the row sums up other rows.
TOTAL_MARKS = ("合计", "总计", "汇总", "小计", "平均", "均值", "总和", "total", "sum", "average")


def normalise_header(text: object) -> str:
    """Compare headers the way a person reads them: full-width → half-width, no spaces or breaks."""
    s = unicodedata.normalize("NFKC", str(text or ""))
    return re.sub(r"\s+", "", s).lower()


def _unit_stripped(header: str) -> str:
    """``支付金额(元)`` → ``支付金额``: a trailing unit in brackets does not change the metric."""
    return re.sub(r"\([^()]*\)$", "", header)


@dataclass(frozen=True)
class Preset:
    """How one kind of report is laid out.

    ``wide``: one row per day (and scope), one column per metric (``columns``).
    Long form (``wide=False``): one row per sample with date, metric, value and optional scope columns.
    """

    name: str
    date_headers: tuple[str, ...]
    columns: Mapping[str, str] = field(default_factory=dict)  # header → metric key
    scope_headers: tuple[str, ...] = ()
    wide: bool = True
    metric_headers: tuple[str, ...] = ()
    value_headers: tuple[str, ...] = ()
    known_unmapped: tuple[str, ...] = ()  # headers we recognise but that have no metric key

    def metric_for(self, header: object) -> str | None:
        h = normalise_header(header)
        table = {normalise_header(k): v for k, v in self.columns.items()}
        return table.get(h) or table.get(_unit_stripped(h))

    def is_date_header(self, header: object) -> bool:
        return normalise_header(header) in {normalise_header(h) for h in self.date_headers}

    def with_columns(
        self, extra: Mapping[str, str], *, date_column: str = "", scope_column: str = ""
    ) -> Preset:
        """This preset plus a config's ``columns`` (which win), ``date_column`` and ``scope_column``."""
        dates = ((date_column,) if date_column else ()) + self.date_headers
        scopes = ((scope_column,) if scope_column else ()) + self.scope_headers
        return Preset(
            name=self.name,
            date_headers=dates,
            columns={**self.columns, **extra},
            scope_headers=scopes,
            wide=self.wide,
            metric_headers=self.metric_headers,
            value_headers=self.value_headers,
            known_unmapped=self.known_unmapped,
        )


_SHOP_DATES = ("统计日期", "日期", "时间", "date")

GENERIC = Preset(
    name="generic",
    date_headers=("date", "日期", "统计日期"),
    wide=False,
    metric_headers=("metric", "指标"),
    value_headers=("value", "数值", "值"),
    scope_headers=("scope", "范围"),
)

# 生意参谋 (Taobao/Tmall): 店铺整体 / 取数 exports and the custom daily templates; 支付 vocabulary.
SYCM = Preset(
    name="sycm",
    date_headers=_SHOP_DATES,
    columns={
        "访客数": "visitors",
        "浏览量": "page_views",
        "支付金额": "pay_amount",
        "支付买家数": "pay_buyers",
        "支付转化率": "pay_conversion_rate",
        "客单价": "avg_order_value",
        "退款金额": "refund_amount",
        "成功退款金额": "refund_amount",
        "退款率": "refund_rate",
        "成功退款率": "refund_rate",
        "跳失率": "bounce_rate",
        "点击率": "ctr",
        # the 商品 report has no 访客数 column; in the all-metrics export 访客数 comes first and wins
        "商品访客数": "visitors",
        "商品浏览量": "page_views",
    },
    scope_headers=("商品ID",),  # the 商品 report: one row per item and day, the item is the scope
    known_unmapped=("店铺名", "店铺名称", "商品名称", "加购人数", "支付件数", "UV价值"),
)

# 京东商智: the export headers are not publicly documented; these are its UI names (成交 vocabulary).
JD = Preset(
    name="jd",
    date_headers=_SHOP_DATES,
    columns={
        "访客数": "visitors",
        "浏览量": "page_views",
        "成交金额": "pay_amount",
        "成交客户数": "pay_buyers",
        "成交人数": "pay_buyers",
        "成交转化率": "pay_conversion_rate",
        "客单价": "avg_order_value",
        "成交客单价": "avg_order_value",
        "成交单量": "orders",
        "成交商品件数": "units_sold",
        "跳失率": "bounce_rate",
        "退款金额": "refund_amount",
        "退款率": "refund_rate",
        "点击率": "ctr",
        # some 商智 views use Taobao's words
        "支付金额": "pay_amount",
        "支付买家数": "pay_buyers",
        "支付转化率": "pay_conversion_rate",
    },
    known_unmapped=("店铺名称", "下单客户数", "下单金额"),
)

# 拼多多 商家后台 数据中心: 成交 where 生意参谋 says 支付; the date column is 统计时间.
PDD = Preset(
    name="pdd",
    date_headers=("统计时间", *_SHOP_DATES),
    columns={
        "店铺访客数": "visitors",
        "访客数": "visitors",
        "店铺浏览量": "page_views",
        "浏览量": "page_views",
        "成交金额": "pay_amount",
        "成交买家数": "pay_buyers",
        "成交转化率": "pay_conversion_rate",
        "客单价": "avg_order_value",
        "退款金额": "refund_amount",
        "成功退款金额": "refund_amount",
        "成功退款率": "refund_rate",
        "退款率": "refund_rate",
        "点击率": "ctr",
    },
    known_unmapped=("成交订单数", "成交UV价值", "店铺关注用户数"),
)

# 千牛 / 赤兔 客服绩效 (also 多多客服): one row per agent per day; the agent is the scope.
CS = Preset(
    name="cs",
    date_headers=("日期", "统计日期", "时间", "date"),
    columns={
        "询单转化率": "inquiry_conversion_rate",
        "询单->最终付款成功率": "inquiry_conversion_rate",
        "询单->最终付款转化率": "inquiry_conversion_rate",
        "首次响应时长": "first_response_seconds",
        "首次响应(秒)": "first_response_seconds",
        "平均首次响应时长": "first_response_seconds",
        "平均响应时长": "avg_response_seconds",
        "平均响应(秒)": "avg_response_seconds",
        "平均人工响应时长": "avg_response_seconds",
        # satisfaction, per agent: 千牛 客服绩效 客户满意比; 多多客服/咚咚 exports' wording [?]
        "客户满意比": "satisfaction_rate",
        "客户满意率": "satisfaction_rate",
        "满意率": "satisfaction_rate",
        "满意度": "satisfaction_rate",
    },
    scope_headers=("旺旺", "客服", "客服旺旺", "客服昵称", "子账号", "客服账号"),
    # 咨询人数 has no metric key in CONTRACT.md; map it with `columns` if a KPI needs it.
    known_unmapped=("咨询人数", "接待人数", "询单人数", "销售额", "店铺"),
)

PRESETS: dict[str, Preset] = {
    p.name: p for p in (GENERIC, SYCM, JD, PDD, CS, Preset(name="custom", date_headers=_SHOP_DATES))
}
PRESETS["qianniu"] = CS


# The metric keys CONTRACT.md names (with issue 14's orders and units_sold); the presets' keys and a
# source's `columns` add to them, and so do the KPIs' metrics (known to the importer, not here).
CONTRACT_METRICS = frozenset(
    (
        "visitors page_views pay_amount pay_buyers pay_conversion_rate avg_order_value refund_amount "
        "refund_rate complaint_rate bounce_rate ctr activity_sales inquiry_conversion_rate "
        "first_response_seconds avg_response_seconds ship_within_24h_rate mis_shipment_rate "
        "inventory_turnover_days orders units_sold complaints complaint_resolution_rate "
        "complaint_handling_hours satisfaction_rate"
    ).split()
)


def known_metrics(extra: object = ()) -> frozenset[str]:
    """Every metric key a preset or CONTRACT.md knows, plus ``extra`` (KPI metrics, a source's columns)."""
    keys = set(CONTRACT_METRICS)
    for preset in PRESETS.values():
        keys.update(preset.columns.values())
    keys.update(str(k) for k in extra or ())  # type: ignore[attr-defined]
    return frozenset(keys)


def preset_for(
    name: str, columns: Mapping[str, str] | None = None, *, date_column: str = "", scope_column: str = ""
) -> Preset:
    """The named preset extended with a config's mapping; raise ValueError naming what is wrong."""
    if name not in PRESETS:
        raise ValueError(f"未知的 preset {name!r}（可选：{', '.join(sorted(PRESETS))}）")
    extra = dict(columns or {})
    bad = [f"{k} = {v!r}" for k, v in extra.items() if not isinstance(v, str) or not METRIC_KEY.fullmatch(v)]
    if bad:
        raise ValueError("columns 里的指标键须是小写字母、数字和下划线：" + "，".join(bad))
    if name == "custom" and not extra:
        raise ValueError('preset = "custom" 需要 columns = { "表头" = "指标键" }')
    base = PRESETS[name]
    if not extra and not date_column and not scope_column:
        return base
    return base.with_columns(extra, date_column=date_column, scope_column=scope_column)


def is_total(cell: object) -> bool:
    if not isinstance(cell, str) or not cell or cell.lstrip()[:1].isdigit():
        return False  # the usual case, a date: decided without normalising
    text = normalise_header(cell)
    return any(text.startswith(mark) for mark in TOTAL_MARKS)
