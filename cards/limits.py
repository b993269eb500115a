"""Every documented limit of every message kind planloop sends, in one table, with its source.

The renderers (``cards/render/*``) take their numbers from here and split or shorten a card
rather than exceed one (a shortened text ends with a "查看详情" link to the card's signed page
where it has one); ``tests/test_payload_limits.py`` renders the largest real cards through
every channel and measures each payload against this table.

Sources: ``DOC`` = the platform's own documentation page (address or WeCom path id),
``PROTOCOLS`` = /work/shared/PROTOCOLS.md, our notes from the docs and the official SDKs; ``2nd`` =
a second-hand copy of the doc; ``ours`` = a margin we chose below a documented limit.
Units: ``bytes`` (UTF-8), ``chars`` (characters), ``items`` (list entries).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PayloadLimit:
    platform: str  # dingtalk | feishu | wecom
    kind: str  # the message kind: the API or channel the payload goes through
    what: str  # the field or count
    maximum: int
    unit: str  # bytes | chars | items
    source: str


_DT_CARD = "DOC open.dingtalk.com/document/development/create-and-deliver-cards (Limits); PROTOCOLS §3.3"
_DT_ROBOT = "DOC open.dingtalk.com robot groupMessages/send + oToMessages/batchSend; PROTOCOLS §3.3"
_FS_API = "DOC open.feishu.cn im/v1/messages create: 卡片及富文本消息请求体最大不能超过30KB (230025)"
_FS_HOOK = "DOC open.feishu.cn custom-bot guide ucTM5YjL3ETO24yNxkjN: 请求体大小不能超过20K; PROTOCOLS §1.3"
_WC_APP = "DOC developer.work.weixin.qq.com path/90236 (message/send), 90372 (template_card)"
_WC_CHAT = "DOC developer.work.weixin.qq.com path/90248 (appchat/send markdown)"
_WC_ROBOT = "DOC developer.work.weixin.qq.com path/91770 (群机器人); PROTOCOLS §2.3"

TABLE: tuple[PayloadLimit, ...] = (
    # ---- DingTalk
    PayloadLimit("dingtalk", "card", "cardParamMap value", 1024, "bytes", _DT_CARD),
    PayloadLimit("dingtalk", "card", "cardParamMap key", 100, "bytes", _DT_CARD),
    PayloadLimit("dingtalk", "card", "buttons", 5, "items", "ours: the card template loops over 5"),
    PayloadLimit("dingtalk", "app_robot", "msgParam", 15_000, "bytes", _DT_ROBOT),
    PayloadLimit("dingtalk", "app_robot", "buttons", 5, "items", _DT_ROBOT + ": sampleActionCard2..5"),
    PayloadLimit(
        "dingtalk",
        "custom_robot",
        "markdown text",
        18_000,
        "bytes",
        "2nd: bodies above ~20,000 bytes are refused (no documented figure found); ours: 18,000",
    ),
    PayloadLimit("dingtalk", "custom_robot", "buttons", 5, "items", "ours: as the app robot's cards"),
    PayloadLimit("dingtalk", "any", "title", 64, "chars", "ours: the conversation list shows less"),
    # ---- Feishu
    PayloadLimit(
        "feishu",
        "api",
        "card JSON (content string)",
        30 * 1024 - 1024,
        "bytes",
        _FS_API + "; ours: 1 KB room",
    ),
    PayloadLimit(
        "feishu", "webhook", "request body", 20 * 1024 - 512, "bytes", _FS_HOOK + "; ours: 512 B room"
    ),
    PayloadLimit(
        "feishu", "any", "components", 200, "items", "ours: below the card JSON 2.0 component cap [?]"
    ),
    PayloadLimit("feishu", "any", "table page_size", 10, "items", "DOC card JSON 2.0 table component: 1-10"),
    # ---- WeCom: app messages (message/send) and template cards
    PayloadLimit("wecom", "app", "markdown content", 2048, "bytes", _WC_APP),
    PayloadLimit("wecom", "app", "text content", 2048, "bytes", _WC_APP),
    PayloadLimit("wecom", "app", "main_title.title", 36, "chars", _WC_APP + ": 建议不超过36个字"),
    PayloadLimit("wecom", "app", "sub_title_text", 160, "chars", _WC_APP + ": 建议不超过160个字"),
    PayloadLimit("wecom", "app", "horizontal_content_list", 6, "items", _WC_APP),
    PayloadLimit("wecom", "app", "horizontal keyname", 5, "chars", _WC_APP + ": 建议不超过5个字"),
    PayloadLimit("wecom", "app", "horizontal value", 30, "chars", _WC_APP + ": 建议不超过30个字"),
    PayloadLimit("wecom", "app", "jump_list", 3, "items", _WC_APP),
    PayloadLimit("wecom", "app", "jump title", 18, "chars", _WC_APP + ": 建议不超过18个字"),
    PayloadLimit("wecom", "app", "button_list", 6, "items", _WC_APP),
    PayloadLimit("wecom", "app", "button text", 10, "chars", _WC_APP + ": 建议不超过10个字"),
    PayloadLimit("wecom", "app", "button key", 1024, "bytes", _WC_APP),
    PayloadLimit("wecom", "app", "task_id", 128, "bytes", _WC_APP),
    PayloadLimit("wecom", "app", "select_list", 3, "items", _WC_APP),
    PayloadLimit("wecom", "app", "option_list", 10, "items", _WC_APP),
    PayloadLimit("wecom", "app", "option id", 128, "bytes", _WC_APP),
    PayloadLimit("wecom", "app", "option text", 16, "chars", _WC_APP + ": 建议不超过16个字"),
    PayloadLimit("wecom", "chat", "markdown content", 2048, "bytes", _WC_CHAT),
    # ---- WeCom: group robot (webhook/send)
    PayloadLimit("wecom", "robot", "markdown content", 4096, "bytes", _WC_ROBOT),
    PayloadLimit("wecom", "robot", "text content", 2048, "bytes", _WC_ROBOT),
    PayloadLimit("wecom", "robot", "main_title.title", 26, "chars", _WC_ROBOT + ": 建议不超过26个字"),
    PayloadLimit("wecom", "robot", "sub_title_text", 112, "chars", _WC_ROBOT + ": 建议不超过112个字"),
    PayloadLimit("wecom", "robot", "horizontal value", 26, "chars", _WC_ROBOT + ": 建议不超过26个字"),
    PayloadLimit("wecom", "robot", "jump title", 13, "chars", _WC_ROBOT + ": 建议不超过13个字"),
)

_BY_KEY = {(row.platform, row.kind, row.what): row for row in TABLE}
assert len(_BY_KEY) == len(TABLE), "one row per (platform, kind, what)"


def limit(platform: str, kind: str, what: str) -> int:
    """The documented maximum of one field (KeyError for a limit the table does not have)."""
    return _BY_KEY[(platform, kind, what)].maximum


def row(platform: str, kind: str, what: str) -> PayloadLimit:
    return _BY_KEY[(platform, kind, what)]


def size(text: str) -> int:
    """UTF-8 bytes: what the byte limits count (a Chinese character is three)."""
    return len(text.encode("utf-8"))
