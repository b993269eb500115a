"""DingTalk renderings of a Card: markdown, ActionCard, robot payloads and card-platform params.

Pure functions, no I/O. DingTalk's markdown is a subset: headings, **bold**, [links](url),
images, lists and > quotes; no tables, colours or HTML (so a Table becomes a list and a
progress bar is drawn with characters). Line breaks inside a paragraph need two trailing
spaces. Mentions differ per channel: a custom robot or session webhook @s an id listed in
``at.atUserIds`` whose ``@id`` also appears in the text, so both are produced together; a
card @s the ids in ``cardAtUserIds`` written as ``<a atId=id>name</a>`` in its markdown; the
app robot's messages cannot @ anyone, so they carry no mention at all.

Sizes come from cards/limits.py: each ``cardParamMap`` value at most 1 KB, ``msgParam`` at
most 15,000 bytes. A text over its limit is cut at a line and ends with a "查看详情" link to
the card's signed page (its first link button or its form's page) when it has one.

Cards whose buttons call back into planloop need the card platform (``card_params`` for
``createAndDeliver``); everything else (robot messages, custom group robots, the
session webhook) is an ActionCard or markdown message, where only link buttons work, so
a form becomes a link button to its signed web page.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cards.limits import limit, size
from cards.model import Button, Card, Divider, Fields, Markdown, Note, Progress, Table
from cards.render.literal import inert
from cards.render.text import bar

MAX_BUTTONS = limit("dingtalk", "app_robot", "buttons")  # sampleActionCard2..5
MAX_TEXT_BYTES = limit("dingtalk", "custom_robot", "markdown text")
MAX_TITLE = limit("dingtalk", "any", "title")
CARD_VALUE_BYTES = limit("dingtalk", "card", "cardParamMap value")
MSG_PARAM_BYTES = limit("dingtalk", "app_robot", "msgParam")
TRUNCATED = "…（内容过长，已截断）"
CONTINUED = "…（完整内容见上一条消息）"
DETAILS = "查看详情"
FORM_BUTTON = "打开表单填写"

THEME_COLORS = {
    "blue": "#0089FF",
    "green": "#00B042",
    "orange": "#FF9200",
    "red": "#F25643",
    "grey": "#8F959E",
}


def _safe(text: str) -> str:
    """Card text in DingTalk markdown shows as typed: no link, image or heading (literal.py), no
    HTML-like tag, and no ``@`` an at-list could turn into a mention (ours come from Card.mentions)."""
    return inert(text).replace("<", "＜").replace(">", "＞").replace("@", "＠")


def _oneline(text: str) -> str:
    return _safe(" ".join(text.split()))


def _lines(text: str) -> str:
    # A single newline is not a line break in DingTalk markdown; two trailing spaces make one.
    # Inline code is not in DingTalk's subset: its backticks would show, so they are dropped.
    return "  \n".join(_safe(line.rstrip().replace("`", "")) for line in text.strip().splitlines())


def _block(block: object) -> str:
    if isinstance(block, Markdown):
        return _lines(block.text)
    if isinstance(block, Fields):
        return "\n".join(f"- **{_oneline(r.label)}**：{_oneline(r.value)}" for r in block.rows)
    if isinstance(block, Progress):
        flag = " **（落后）**" if block.lagging else ""
        caption = f"  \n{_oneline(block.caption)}" if block.caption else ""
        return f"**{_oneline(block.label)}** {bar(block.ratio)}{flag}{caption}"
    if isinstance(block, Table):
        head = "**" + " ｜ ".join(_oneline(h) for h in block.header) + "**"
        rows = [f"- {' ｜ '.join(_oneline(c) for c in row)}" for row in block.rows]
        return "\n".join([head, *rows])
    if isinstance(block, Note):
        return "> " + "  \n> ".join(_safe(line.rstrip()) for line in block.text.strip().splitlines())
    if isinstance(block, Divider):
        return "---"
    raise TypeError(f"unknown block {type(block).__name__}")


def mentions_line(card: Card) -> str:
    ids = [m for m in card.mentions if m != "all"]
    parts = [f"@{m}" for m in ids]
    if "all" in card.mentions:
        parts.insert(0, "@所有人")
    return " ".join(parts)


def card_mentions_line(card: Card, names: Mapping[str, str]) -> str:
    """A card's @s: ``<a atId=…>`` with the person's name (the ids go in ``cardAtUserIds``)."""
    parts = [f"<a atId={m}>@{_oneline(names.get(m, m))}</a>" for m in card.mentions if m != "all"]
    if "all" in card.mentions:
        parts.insert(0, "@所有人")
    return " ".join(parts)


def body(card: Card, *, with_form_text: bool = True, mention: str | None = None) -> str:
    """The card's content as DingTalk markdown, without the title. ``mention``: the @ line to
    end with (default: the robots' ``@id`` line; "" for none)."""
    parts = [_block(b) for b in card.blocks]
    if card.form is not None and with_form_text:
        if card.form.error:
            parts.append(f"**错误：**{_oneline(card.form.error)}")
        if not card.form.link:
            parts.append("> 这个表单需要在网页中填写，请联系管理员配置 public_url。")
    mention = mentions_line(card) if mention is None else mention
    if mention:
        parts.append(mention)
    return "\n\n".join(p for p in parts if p)


def detail_link(card: Card) -> str:
    """The card's signed page, where a shortened card sends the reader for the rest."""
    buttons = link_buttons(card)
    return buttons[0].url if buttons else ""


def fit(text: str, limit: int = MAX_TEXT_BYTES, link: str = "", said: str = TRUNCATED) -> str:
    """Cut ``text`` at a line boundary so it stays under ``limit`` UTF-8 bytes, ``said`` so (and
    linking to ``link``, the full card's page, when there is one)."""
    if len(text.encode()) <= limit:
        return text
    more = f" [{DETAILS}]({link})" if link else ""
    tail = said + more
    room = limit - len(tail.encode()) - 2
    kept: list[str] = []
    used = 0
    for line in text.split("\n"):
        size = len(line.encode()) + 1
        if used + size > room:
            break
        kept.append(line)
        used += size
    if not kept:  # one enormous line: cut by characters
        cut = text.encode()[: max(0, room)].decode(errors="ignore")
        return cut + "\n\n" + tail
    return "\n".join(kept) + "\n\n" + tail


def title(card: Card) -> str:
    t = _oneline(card.title) or "planloop"
    return t if len(t) <= MAX_TITLE else t[: MAX_TITLE - 1] + "…"


def markdown(card: Card) -> str:
    """The whole card (title as a heading) as one markdown text, link buttons inline."""
    parts = [f"#### {title(card)}", body(card)]
    links = [f"[{_oneline(b.label)}]({b.url})" for b in link_buttons(card)]
    if links:
        parts.append(" ｜ ".join(links))
    return fit("\n\n".join(p for p in parts if p), link=detail_link(card))


def link_buttons(card: Card) -> list[Button]:
    """The buttons a link-only message can carry: URL buttons, and a form as its web page."""
    out = [b for b in card.buttons if b.url]
    link = card.form.link if card.form is not None else ""
    if link and all(b.url != link for b in out):
        out.insert(0, Button(FORM_BUTTON, url=link, style="primary"))
    return out[:MAX_BUTTONS]


def needs_callbacks(card: Card) -> bool:
    """True when some button can only work as a callback (no URL): a card-platform card is needed."""
    return any(not b.url for b in card.buttons)


def action_card(card: Card) -> dict[str, Any]:
    """The custom-robot / session-webhook ActionCard (URL buttons only)."""
    buttons = link_buttons(card)
    out: dict[str, Any] = {"title": title(card), "text": markdown_for_action_card(card)}
    if len(buttons) == 1:
        out["singleTitle"] = _oneline(buttons[0].label)
        out["singleURL"] = buttons[0].url
    else:
        out["btnOrientation"] = "0"
        out["btns"] = [{"title": _oneline(b.label), "actionURL": b.url} for b in buttons]
    return out


def markdown_for_action_card(card: Card, *, mention: str | None = None, limit: int = MAX_TEXT_BYTES) -> str:
    text = "\n\n".join(p for p in (f"#### {title(card)}", body(card, mention=mention)) if p)
    return fit(text, limit, link=detail_link(card))


def at(card: Card) -> dict[str, Any]:
    return {"atUserIds": [m for m in card.mentions if m != "all"], "isAtAll": "all" in card.mentions}


def robot_message(card: Card) -> dict[str, Any]:
    """A message for a custom group robot or a session webhook (``msgtype`` payload).

    An ActionCard cannot @ anyone, so a card with mentions goes as markdown with its
    links inline; otherwise link buttons make it an ActionCard.
    """
    if link_buttons(card) and not card.mentions:
        return {"msgtype": "actionCard", "actionCard": action_card(card)}
    return {"msgtype": "markdown", "markdown": {"title": title(card), "text": markdown(card)}, "at": at(card)}


def app_robot_message(card: Card) -> tuple[str, dict[str, str]]:
    """``(msgKey, msgParam)`` for the app robot's groupMessages/send and oToMessages/batchSend.

    sampleActionCard has one button (``singleTitle``/``singleURL``); sampleActionCard2..5
    stack 2-5 buttons (``actionTitleN``/``actionURLN``); no buttons is sampleMarkdown. The app
    robot cannot @ anyone: no mention line (it would show as a literal ``@id``). The whole
    ``msgParam`` JSON stays within its 15,000 bytes: the text is shortened until it does.
    """
    budget = MSG_PARAM_BYTES
    while True:
        key, param = _app_robot_param(card, budget)
        over = size(json.dumps(param, ensure_ascii=False)) - MSG_PARAM_BYTES
        if over <= 0:
            return key, param
        budget -= over + 64  # JSON escapes (\n, \") grew the text: shorten by the excess


def _app_robot_param(card: Card, text_limit: int) -> tuple[str, dict[str, str]]:
    buttons = link_buttons(card)
    text = markdown_for_action_card(card, mention="", limit=text_limit)
    if not buttons:
        return "sampleMarkdown", {"title": title(card), "text": text}
    if len(buttons) == 1:
        return "sampleActionCard", {
            "title": title(card),
            "text": text,
            "singleTitle": _oneline(buttons[0].label),
            "singleURL": buttons[0].url,
        }
    param = {"title": title(card), "text": text}
    for n, b in enumerate(buttons, start=1):
        param[f"actionTitle{n}"] = _oneline(b.label)
        param[f"actionURL{n}"] = b.url
    return f"sampleActionCard{len(buttons)}", param


def card_needs_split(card: Card) -> bool:
    """A card whose text exceeds one card value and that has no page to link to goes in two
    messages: the whole text from the app robot first, then the card, shortened, with its buttons."""
    return not detail_link(card) and size(body(card, mention="")) > CARD_VALUE_BYTES


def text_part(card: Card) -> Card:
    """The first of a split card's two messages: everything but the buttons (app robot markdown)."""
    return Card(card.title, card.blocks, theme=card.theme)


def card_params(
    card: Card, names: Mapping[str, str] | None = None, *, continued: bool = False
) -> dict[str, str]:
    """``cardParamMap`` for the card platform: every value a STRING (lists as JSON text), each
    at most 1 KB (the markdown is shortened with a link to the full page; buttons that do
    not fit are left off, the last first).

    The card template (configured by the deployer, see docs/readme/dingtalk.md) shows
    ``title``, ``markdown`` and loops over ``buttons``; a callback button sends back
    ``{"action": …, "value": "<JSON object>"}`` as its params. ``names``: display names of
    the mentioned ids, for the ``<a atId>`` mentions; ``continued``: the whole text went just
    before (``card_needs_split``).
    """
    buttons = _card_buttons(card)
    while buttons and size(json.dumps(buttons, ensure_ascii=False)) > CARD_VALUE_BYTES:
        buttons.pop()
    form_link = card.form.link if card.form is not None else ""
    mention = card_mentions_line(card, names or {})
    return {
        "title": title(card),
        "theme": card.theme,
        "color": THEME_COLORS.get(card.theme, THEME_COLORS["blue"]),
        "markdown": fit(
            body(card, mention=mention),
            CARD_VALUE_BYTES,
            link=detail_link(card),
            said=CONTINUED if continued else TRUNCATED,
        ),
        "buttons": json.dumps(buttons, ensure_ascii=False),
        "has_buttons": "true" if buttons else "false",
        "form_link": form_link,
        "form_label": FORM_BUTTON if form_link else "",
        "toast": fit(card.toast, CARD_VALUE_BYTES),
    }


def _card_buttons(card: Card) -> list[dict[str, str]]:
    buttons: list[dict[str, str]] = []
    for b in card.buttons[:MAX_BUTTONS]:
        entry = {"text": _oneline(b.label), "style": b.style}
        if b.url:
            entry.update(type="link", url=b.url, action="", value="{}")
        else:
            entry.update(
                type="callback",
                url="",
                action=b.action,
                value=json.dumps(dict(b.value), ensure_ascii=False, sort_keys=True),
            )
        buttons.append(entry)
    return buttons


def render(card: Card) -> dict[str, Any]:
    """Every DingTalk rendering of ``card`` at once (the golden files pin this)."""
    msg_key, msg_param = app_robot_message(card)
    return {
        "robot_message": robot_message(card),
        "app_robot": {"msgKey": msg_key, "msgParam": msg_param},
        "card_params": card_params(card),
        "needs_callbacks": needs_callbacks(card),
    }
