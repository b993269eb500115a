"""After-sales reasons → causes (物流, 产品, 描述不符, 服务, 其他), and the ``[aftersales]`` options.

A platform's reason text is looked up whole first (the reasons the platforms list for buyers to
choose), then by keyword; the admin's ``causes = { "缺货" = "物流" }`` comes before both, as a
whole reason or a keyword. A reason nothing maps counts under 其他 and is listed for the admin.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LOGISTICS, PRODUCT, MISDESCRIBED, SERVICE, OTHER = "物流", "产品", "描述不符", "服务", "其他"
CAUSES = (LOGISTICS, PRODUCT, MISDESCRIBED, SERVICE, OTHER)
DEFAULT_RESOLUTION_HOURS = 48

# Reasons as the platforms list them for buyers (淘宝/天猫 退款原因, 拼多多 售后原因, 抖店 售后理由,
# 京东 问题类型), whole.
BUILTIN_REASONS: dict[str, str] = {
    "快递一直未送达": LOGISTICS,
    "快递/物流一直未送到": LOGISTICS,
    "快递/物流无跟踪记录": LOGISTICS,
    "物流信息长时间未更新": LOGISTICS,
    "未按约定时间发货": LOGISTICS,
    "发货太慢": LOGISTICS,
    "虚假发货": LOGISTICS,
    "货物破损已拒签": LOGISTICS,
    "少件/漏发": LOGISTICS,
    "少件漏发": LOGISTICS,
    "空包裹": LOGISTICS,
    "质量问题": PRODUCT,
    "商品质量问题": PRODUCT,
    "包装/商品破损/污渍": PRODUCT,
    "商品破损": PRODUCT,
    "假冒品牌": PRODUCT,
    "商品有瑕疵": PRODUCT,
    "功能故障": PRODUCT,
    "商家发错货": MISDESCRIBED,
    "卖家发错货": MISDESCRIBED,
    "发错货": MISDESCRIBED,
    "商品与描述不符": MISDESCRIBED,
    "商品与页面描述不符": MISDESCRIBED,
    "描述不符": MISDESCRIBED,
    "尺寸拍错/不喜欢/效果不好": OTHER,
    "服务态度差": SERVICE,
    "卖家服务态度差": SERVICE,
    "客服态度差": SERVICE,
    "七天无理由退换货": OTHER,
    "7天无理由退货": OTHER,
    "七天无理由": OTHER,
    "不想要了": OTHER,
    "多拍/拍错/不想要": OTHER,
    "拍错了": OTHER,
    "协商一致退款": OTHER,
    "退运费": OTHER,
    "价保": OTHER,
    "其他": OTHER,
}

# Keywords, tried in this order (描述不符 before 质量: "与描述不符的质量" is about the listing).
BUILTIN_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("描述不符", MISDESCRIBED),
    ("与描述", MISDESCRIBED),
    ("发错", MISDESCRIBED),
    ("错发", MISDESCRIBED),
    ("图片不符", MISDESCRIBED),
    ("规格不符", MISDESCRIBED),
    ("颜色不符", MISDESCRIBED),
    ("尺寸不符", MISDESCRIBED),
    ("材质不符", MISDESCRIBED),
    ("态度", SERVICE),
    ("客服", SERVICE),
    ("服务", SERVICE),
    ("快递", LOGISTICS),
    ("物流", LOGISTICS),
    ("未送达", LOGISTICS),
    ("未收到货", LOGISTICS),
    ("配送", LOGISTICS),
    ("发货", LOGISTICS),
    ("漏发", LOGISTICS),
    ("少件", LOGISTICS),
    ("拒签", LOGISTICS),
    ("丢件", LOGISTICS),
    ("质量", PRODUCT),
    ("破损", PRODUCT),
    ("损坏", PRODUCT),
    ("瑕疵", PRODUCT),
    ("做工", PRODUCT),
    ("故障", PRODUCT),
    ("假冒", PRODUCT),
    ("过期", PRODUCT),
    ("无理由", OTHER),
    ("不想要", OTHER),
    ("拍错", OTHER),
    ("多拍", OTHER),
    ("不喜欢", OTHER),
)


def normalise_reason(text: object) -> str:
    """Full-width → half-width, no spaces: 「快递 / 物流一直未送到」 and 「快递/物流一直未送到」 are one reason."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text or "")))


@dataclass(frozen=True)
class CauseMap:
    """The reason → cause rules in force: the admin's first, then the built-in ones."""

    extra: Mapping[str, str] = field(default_factory=dict)

    def lookup(self, reason: str) -> str | None:
        """The cause a rule gives ``reason``, or None when no rule maps it."""
        text = normalise_reason(reason)
        if not text:
            return None
        extra = {normalise_reason(k): v for k, v in self.extra.items()}
        if text in extra:
            return extra[text]
        for word, cause in extra.items():
            if word and word in text:
                return cause
        builtin = BUILTIN_REASONS.get(text)
        if builtin:
            return builtin
        return next((cause for word, cause in BUILTIN_KEYWORDS if word in text), None)

    def cause_of(self, reason: str) -> str:
        return self.lookup(reason) or OTHER


@dataclass(frozen=True)
class AftersalesOptions:
    """``[aftersales]``: hours within which a case counts as resolved, extra reason → cause rules."""

    resolution_hours: int = DEFAULT_RESOLUTION_HOURS
    causes: Mapping[str, str] = field(default_factory=dict)

    @property
    def cause_map(self) -> CauseMap:
        return CauseMap(dict(self.causes))

    def fingerprint(self) -> str:
        """Changes when anything that decides a stored case's cause or a day's rate changes."""
        text = json.dumps(
            {"hours": self.resolution_hours, "causes": sorted(self.causes.items()), "v": 1},
            ensure_ascii=False,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_options(raw: Any) -> tuple[AftersalesOptions, list[str]]:
    """The ``[aftersales]`` table as options, and one problem line per bad key."""
    problems: list[str] = []
    if raw is None:
        return AftersalesOptions(), problems
    if not isinstance(raw, Mapping):
        return AftersalesOptions(), ["aftersales: expected a table [aftersales]"]
    for key in raw:
        if key not in ("resolution_hours", "causes"):
            problems.append(f"aftersales.{key}: unknown key (expected resolution_hours, causes)")
    hours = raw.get("resolution_hours", DEFAULT_RESOLUTION_HOURS)
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 24 * 60:
        problems.append(f"aftersales.resolution_hours: expected whole hours from 1 to 1440, not {hours!r}")
        hours = DEFAULT_RESOLUTION_HOURS
    causes = raw.get("causes", {})
    if not isinstance(causes, Mapping):
        problems.append('aftersales.causes: expected a table such as { "缺货" = "物流" }')
        causes = {}
    good: dict[str, str] = {}
    for reason, cause in causes.items():
        if cause not in CAUSES:
            problems.append(f"aftersales.causes.{reason}: {cause!r} is not one of {', '.join(CAUSES)}")
        elif not normalise_reason(reason):
            problems.append("aftersales.causes: an empty reason cannot be mapped")
        else:
            good[str(reason)] = str(cause)
    return AftersalesOptions(hours, good), problems
