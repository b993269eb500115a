"""DingTalk renderings of a Card: markdown, ActionCard, robot payloads and card-platform params.

Pure functions, no I/O. DingTalk's markdown is a subset: headings, **bold**, [links](url),
images, lists and > quotes; no tables, colours or HTML (so a Table becomes a list and a
progress bar is drawn with characters). Line breaks inside a paragraph need two trailing
spaces. An @mention notifies only when the id is listed in ``atUserIds`` AND ``@id``
appears in the text, so both are produced together.

Cards whose buttons call back into planloop need the card platform (``card_params`` for
``createAndDeliver``); everything else (robot messages, custom group robots, the
session webhook) is an ActionCard or markdown message, where only link buttons work, so
a form becomes a link button to its signed web page.
"""

from __future__ import annotations

import json
from typing import Any

from cards.model import Button, Card, Divider, Fields, Markdown, Note, Progress, Table
from cards.render.literal import inert
from cards.render.text import bar

MAX_BUTTONS = 5  # the app robot's vertical ActionCards go up to sampleActionCard5
MAX_TEXT_BYTES = 18_000  # robot messages are refused above ~20 000 bytes; leave room for JSON
MAX_TITLE = 64
TRUNCATED = "…（内容过长，已截断）"
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


def body(card: Card, *, with_form_text: bool = True) -> str:
    """The card's content as DingTalk markdown, without the title."""
    parts = [_block(b) for b in card.blocks]
    if card.form is not None and with_form_text:
        if card.form.error:
            parts.append(f"**错误：**{_oneline(card.form.error)}")
        if not card.form.link:
            parts.append("> 这个表单需要在网页中填写，请联系管理员配置 public_url。")
    mention = mentions_line(card)
    if mention:
        parts.append(mention)
    return "\n\n".join(p for p in parts if p)


def fit(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """Cut ``text`` at a line boundary so it stays under ``limit`` UTF-8 bytes, saying so."""
    if len(text.encode()) <= limit:
        return text
    room = limit - len(TRUNCATED.encode()) - 2
    kept: list[str] = []
    used = 0
    for line in text.split("\n"):
        size = len(line.encode()) + 1
        if used + size > room:
            break
        kept.append(line)
        used += size
    if not kept:  # one enormous line: cut by characters
        cut = text.encode()[:room].decode(errors="ignore")
        return cut + "\n\n" + TRUNCATED
    return "\n".join(kept) + "\n\n" + TRUNCATED


def title(card: Card) -> str:
    t = _oneline(card.title) or "planloop"
    return t if len(t) <= MAX_TITLE else t[: MAX_TITLE - 1] + "…"


def markdown(card: Card) -> str:
    """The whole card (title as a heading) as one markdown text, link buttons inline."""
    parts = [f"#### {title(card)}", body(card)]
    links = [f"[{_oneline(b.label)}]({b.url})" for b in link_buttons(card)]
    if links:
        parts.append(" ｜ ".join(links))
    return fit("\n\n".join(p for p in parts if p))


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


def markdown_for_action_card(card: Card) -> str:
    return fit("\n\n".join(p for p in (f"#### {title(card)}", body(card)) if p))


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
    stack 2-5 buttons (``actionTitleN``/``actionURLN``); no buttons is sampleMarkdown.
    """
    buttons = link_buttons(card)
    if not buttons:
        return "sampleMarkdown", {"title": title(card), "text": markdown(card)}
    text = markdown_for_action_card(card)
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


def card_params(card: Card) -> dict[str, str]:
    """``cardParamMap`` for the card platform: every value a STRING (lists as JSON text).

    The card template (configured by the deployer, see docs/readme/dingtalk.md) shows
    ``title``, ``markdown`` and loops over ``buttons``; a callback button sends back
    ``{"action": …, "value": "<JSON object>"}`` as its params.
    """
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
    form_link = card.form.link if card.form is not None else ""
    return {
        "title": title(card),
        "theme": card.theme,
        "color": THEME_COLORS.get(card.theme, THEME_COLORS["blue"]),
        "markdown": fit(body(card)),
        "buttons": json.dumps(buttons, ensure_ascii=False),
        "has_buttons": "true" if buttons else "false",
        "form_link": form_link,
        "form_label": FORM_BUTTON if form_link else "",
        "toast": card.toast,
    }


def render(card: Card) -> dict[str, Any]:
    """Every DingTalk rendering of ``card`` at once (the golden files pin this)."""
    msg_key, msg_param = app_robot_message(card)
    return {
        "robot_message": robot_message(card),
        "app_robot": {"msgKey": msg_key, "msgParam": msg_param},
        "card_params": card_params(card),
        "needs_callbacks": needs_callbacks(card),
    }
