"""Card -> WeCom: an app template card (plus markdown when the text does not fit) or group-robot messages.

Pure functions; ``bot/platforms/wecom.py`` adds the envelope (touser, agentid, access token).
Limits, from developer.work.weixin.qq.com (path/90372 app messages, 91770 group robot,
94888 update) as quoted by the SDKs that wrap them. Lengths marked "建议" in the docs are
treated as hard limits so nothing is cut off on a phone:

- template card: main_title.title 36 chars (robot 26), sub_title_text 160 (robot 112),
  horizontal_content_list 6 rows (keyname 5 chars, value 30; robot 26), jump_list 3
  (title 18; robot 13), button_list 6 (text 10 chars, key 1024 bytes), task_id 128 bytes of
  ``[0-9A-Za-z_-@]``, multiple_interaction 3 selects of 10 options (id 128 bytes, text 16
  chars), text_notice needs ``card_action``;
- markdown: 4096 bytes for the group robot, 2048 for an app message; text 2048 bytes.

WeCom cards have no free-text input: a Form whose inputs are all selects stays in the card
(multiple_interaction); any other Form becomes a link button to ``Form.link`` (the signed
web form). Text longer than a card holds goes first as markdown messages, split at line
breaks (never inside a character), and the card follows with the buttons.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from cards.limits import limit
from cards.model import Button, Card, Divider, Field, Fields, Form, Markdown, Note, Progress, Table
from cards.render.literal import inert
from cards.render.text import bar, plain

# Every number from the one table of documented limits (cards/limits.py, with its source).
APP_TITLE = limit("wecom", "app", "main_title.title")
APP_SUBTITLE = limit("wecom", "app", "sub_title_text")
ROBOT_TITLE = limit("wecom", "robot", "main_title.title")
ROBOT_SUBTITLE = limit("wecom", "robot", "sub_title_text")
ROWS = limit("wecom", "app", "horizontal_content_list")
KEYNAME = limit("wecom", "app", "horizontal keyname")
APP_VALUE = limit("wecom", "app", "horizontal value")
ROBOT_VALUE = limit("wecom", "robot", "horizontal value")
JUMPS = limit("wecom", "app", "jump_list")
APP_JUMP_TITLE = limit("wecom", "app", "jump title")
ROBOT_JUMP_TITLE = limit("wecom", "robot", "jump title")
BUTTONS = limit("wecom", "app", "button_list")
BUTTON_TEXT = limit("wecom", "app", "button text")
KEY_BYTES = limit("wecom", "app", "button key")
TASK_ID_BYTES = limit("wecom", "app", "task_id")
SELECTS = limit("wecom", "app", "select_list")
OPTIONS = limit("wecom", "app", "option_list")
OPTION_ID_BYTES = limit("wecom", "app", "option id")
OPTION_TEXT = limit("wecom", "app", "option text")
APP_MARKDOWN_BYTES = limit("wecom", "app", "markdown content")
ROBOT_MARKDOWN_BYTES = limit("wecom", "robot", "markdown content")
TEXT_BYTES = limit("wecom", "app", "text content")


@dataclass(frozen=True)
class CardLimits:
    """The lengths one channel's template cards hold (characters)."""

    title: int
    subtitle: int
    value: int
    jump_title: int


APP = CardLimits(APP_TITLE, APP_SUBTITLE, APP_VALUE, APP_JUMP_TITLE)
# The 智能机器人 (AI bot) documents the group robot's "建议" lengths (aibot-node-sdk types/api.ts).
AIBOT = CardLimits(ROBOT_TITLE, ROBOT_SUBTITLE, ROBOT_VALUE, ROBOT_JUMP_TITLE)

_TASK_ID = re.compile(r"^[0-9A-Za-z_\-@]{1,128}$")
_STYLE = {"primary": 1, "danger": 2, "default": 4}  # 1 blue, 2 red, 3 green, 4 grey
_COLOR = {"red": "warning", "orange": "warning", "green": "info", "grey": "comment"}
_CONTINUED = "（续）"


class WeComLimitError(ValueError):
    """The card cannot be shown on WeCom within its limits (a handler bug, not a delivery hiccup)."""


# ---------------------------------------------------------------- button keys


def encode_key(action: str, value: Mapping[str, str] | None = None) -> str:
    """A button/submit key carrying the action id and its value: ``action|k=v&k2=v2`` (percent-encoded).

    WeCom echoes the key back as ``EventKey`` (at most 1024 bytes), so the key is the
    only place a click can carry its value.
    """
    if not action:
        raise WeComLimitError("a callback button needs an action id")
    key = quote(action, safe="._-:")
    if value:
        key += "|" + urlencode(sorted((str(k), str(v)) for k, v in value.items()))
    if len(key.encode()) > KEY_BYTES:
        raise WeComLimitError(f"button key for {action!r} is longer than {KEY_BYTES} bytes")
    return key


def decode_key(key: str) -> tuple[str, dict[str, str]]:
    """Inverse of ``encode_key``; keys starting with ``_`` are ours (uniqueness) and dropped."""
    raw_action, _, raw_value = key.partition("|")
    action = unquote(raw_action)
    values = {k: v for k, v in parse_qsl(raw_value, keep_blank_values=True) if not k.startswith("_")}
    return action, values


# ---------------------------------------------------------------- text helpers


def ellipsize(text: str, limit: int) -> str:
    """At most ``limit`` characters; a cut text ends with "…" (whole characters only)."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def split_utf8(text: str, limit: int) -> list[str]:
    """Pieces of at most ``limit`` UTF-8 bytes, cut at line breaks where possible and never inside
    a character; joining the pieces with "\\n" gives ``text`` back when every cut fell on a line break."""
    if limit < 4:
        raise ValueError("limit too small for a UTF-8 character")
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = line if not current else current + "\n" + line
        if len(candidate.encode()) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
            current = ""
        while len(line.encode()) > limit:
            head = _prefix_within(line, limit)
            pieces.append(head)
            line = line[len(head) :]
        current = line
    if current or not pieces:
        pieces.append(current)
    return pieces


def _prefix_within(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 form fits ``limit`` bytes (whole characters)."""
    size = 0
    for i, ch in enumerate(text):
        size += len(ch.encode())
        if size > limit:
            return text[:i]
    return text


def utf8_len(text: str) -> int:
    return len(text.encode())


def _safe(text: str) -> str:
    """User text in WeCom markdown: "<" would open a tag (<@userid> mentions, <font>); typed
    links, images and headings stay text (cards/render/literal.py)."""
    return inert(text.replace("<", "＜").replace(">", "＞"))


# ---------------------------------------------------------------- markdown (robot and app)


def _md_lines(card: Card, *, with_buttons: bool) -> list[str]:
    lines: list[str] = []
    color = _COLOR.get(card.theme)
    title = f"**{_safe(card.title)}**"
    lines.append(f'<font color="{color}">{title}</font>' if color else title)
    for block in card.blocks:
        if isinstance(block, Markdown):
            lines.append(_safe(block.text))
        elif isinstance(block, Fields):
            lines.extend(
                f'<font color="comment">{_safe(r.label)}：</font>{_safe(r.value)}' for r in block.rows
            )
        elif isinstance(block, Progress):
            text = f"{_safe(block.label)} {bar(block.ratio)}"
            if block.lagging:
                text = f'<font color="warning">{text}（落后）</font>'
            if block.caption:
                text += f" {_safe(block.caption)}"
            lines.append(text)
        elif isinstance(block, Table):
            lines.append("**" + " | ".join(_safe(h) for h in block.header) + "**")
            lines.extend(" | ".join(_safe(c) for c in row) for row in block.rows)
        elif isinstance(block, Note):
            lines.append(f'<font color="comment">{_safe(block.text)}</font>')
        elif isinstance(block, Divider):
            lines.append("")
    form = card.form
    if form is not None:
        if form.error:
            lines.append(f'<font color="warning">{_safe(form.error)}</font>')
        if form.link:
            lines.append(
                f"[{_safe(form.submit_label if _select_only(form) else _fill_label(form))}]({form.link})"
            )
        else:
            lines.append('<font color="comment">（请在企业微信应用消息中填写）</font>')
    if with_buttons:
        links = [b for b in card.buttons if b.url]
        lines.extend(f"[{_safe(b.label)}]({b.url})" for b in links)
        actions = [b.label for b in card.buttons if not b.url]
        if actions:
            lines.append(f'<font color="comment">可在应用消息中操作：{_safe("、".join(actions))}</font>')
    return lines


def markdown_parts(card: Card, limit: int, *, suffix: str = "", with_buttons: bool = True) -> list[str]:
    """The whole card as WeCom markdown, in pieces of at most ``limit`` bytes; ``suffix`` (mentions)
    ends the last piece, and every piece after the first starts with "（续）"."""
    body = "\n".join(_md_lines(card, with_buttons=with_buttons))
    tail = f"\n{suffix}" if suffix else ""
    head = f"{_CONTINUED}\n"
    room = limit - utf8_len(head) - utf8_len(tail)
    if room < 64:
        raise WeComLimitError("mentions leave no room for the message")
    pieces = split_utf8(body, room)
    return [(head if i else "") + p + (tail if i == len(pieces) - 1 else "") for i, p in enumerate(pieces)]


# ---------------------------------------------------------------- app template card


def _fill_label(form: Form) -> str:
    return ellipsize(form.submit_label if form.submit_label not in ("", "提交") else "去填写", BUTTON_TEXT)


def _select_only(form: Form) -> bool:
    return (
        bool(form.inputs)
        and all(i.kind == "select" and 1 <= len(i.options) <= OPTIONS for i in form.inputs)
        and len(form.inputs) <= SELECTS
    )


def _fields_fit(card: Card, value_limit: int) -> bool:
    rows = [r for b in card.blocks if isinstance(b, Fields) for r in b.rows]
    return 0 < len(rows) <= ROWS and all(
        len(r.label) <= KEYNAME and len(r.value) <= value_limit and r.label for r in rows
    )


def _plain_lines(card: Card, *, skip_fields: bool) -> list[str]:
    lines: list[str] = []
    for block in card.blocks:
        if isinstance(block, Markdown):
            lines.append(plain(block.text))
        elif isinstance(block, Fields):
            if not skip_fields:
                lines.extend(f"{r.label}：{r.value}" for r in block.rows)
        elif isinstance(block, Progress):
            flag = "（落后）" if block.lagging else ""
            caption = f" {block.caption}" if block.caption else ""
            lines.append(f"{block.label} {bar(block.ratio)}{flag}{caption}")
        elif isinstance(block, Table):
            lines.append(" | ".join(block.header))
            lines.extend(" | ".join(row) for row in block.rows)
        elif isinstance(block, Note):
            lines.append(plain(block.text))
    if card.form is not None:
        if card.form.error:
            lines.append(f"错误：{card.form.error}")
        lines.extend(f"{i.label}：{i.error}" for i in card.form.inputs if i.error)
    return [line for line in lines if line.strip()]


def _cut_at_line(lines: list[str], limit: int, note: str) -> str:
    """Whole lines that fit ``limit`` characters with ``note`` after them (the rest is sent before)."""
    kept: list[str] = []
    for line in lines:
        candidate = "\n".join([*kept, line, note])
        if len(candidate) > limit:
            break
        kept.append(line)
    if not kept:
        return ellipsize(lines[0], limit - len(note) - 1) + "\n" + note
    return "\n".join([*kept, note])


def _rows(card: Card) -> list[dict[str, Any]]:
    rows: list[Field] = [r for b in card.blocks if isinstance(b, Fields) for r in b.rows]
    return [{"keyname": r.label, "value": r.value} for r in rows]


def _check_task_id(task_id: str) -> None:
    if not _TASK_ID.match(task_id):
        raise WeComLimitError(f"task_id must be 1-{TASK_ID_BYTES} of [0-9A-Za-z_-@]: {task_id!r}")


def _link_buttons(card: Card) -> list[Button]:
    links = [b for b in card.buttons if b.url]
    if card.form is not None and not _select_only(card.form):
        if not card.form.link:
            raise WeComLimitError(
                "a WeCom card cannot hold text inputs: the Form needs a link (Form.link) to the web form"
            )
        links.insert(0, Button(label=_fill_label(card.form), url=card.form.link, style="primary"))
    return links


def _button(b: Button, used: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"text": ellipsize(b.label, BUTTON_TEXT), "style": _STYLE.get(b.style, 4)}
    if b.url:
        out.update(type=1, url=b.url)
        return out
    key = encode_key(b.action, b.value)
    n = 1
    while key in used:  # keys must be unique in a card; the "_" value is dropped on the way back
        n += 1
        key = encode_key(b.action, {**b.value, "_": str(n)})
    used.add(key)
    out.update(type=0, key=key)
    return out


def _jump(b: Button, title_limit: int) -> dict[str, Any]:
    return {"type": 1, "title": ellipsize(b.label, title_limit), "url": b.url}


def template_card(
    card: Card, *, task_id: str, fallback_url: str = "", limits: CardLimits = APP
) -> tuple[dict[str, Any], bool]:
    """The app template card for ``card`` and whether its text is complete (False: the full text
    must be sent before it as markdown, see ``app_messages``)."""
    _check_task_id(task_id)
    callbacks = [b for b in card.buttons if not b.url]
    links = _link_buttons(card)
    form = card.form
    selects = form is not None and _select_only(form)
    horizontal = _fields_fit(card, limits.value)
    lines = _plain_lines(card, skip_fields=horizontal)
    text = "\n".join(lines)
    complete = len(text) <= limits.subtitle and len(card.title or card.toast) <= limits.title
    title = card.title or card.toast
    if not title and not text:
        raise WeComLimitError("an empty card (no title, text or toast) cannot be sent")
    out: dict[str, Any] = {"main_title": {"title": ellipsize(title, limits.title)}} if title else {}
    if text:
        out["sub_title_text"] = (
            text
            if len(text) <= limits.subtitle
            else _cut_at_line(lines, limits.subtitle, "（全文见上方消息）")
        )
    if horizontal:
        out["horizontal_content_list"] = _rows(card)
    jumps: list[Button] = []
    if selects:
        assert form is not None
        if callbacks:
            raise WeComLimitError("a WeCom card cannot hold a select form and callback buttons together")
        out["card_type"] = "multiple_interaction"
        out["select_list"] = [_select(i) for i in form.inputs]
        out["submit_button"] = {
            "text": ellipsize(form.submit_label or "提交", BUTTON_TEXT),
            "key": encode_key(form.action, form.values),
        }
        if form.link:
            links.append(Button(label="在网页中填写", url=form.link))
        jumps = links
    elif callbacks:
        out["card_type"] = "button_interaction"
        used: set[str] = set()
        buttons = [_button(b, used) for b in callbacks]
        if len(buttons) > BUTTONS:
            raise WeComLimitError(
                f"a WeCom card holds at most {BUTTONS} buttons, this one has {len(buttons)}"
            )
        room = BUTTONS - len(buttons)
        buttons += [_button(b, used) for b in links[:room]]
        jumps = links[room:]
        out["button_list"] = buttons
    else:
        out["card_type"] = "text_notice"
        target = links[0].url if links else fallback_url
        if not target:
            raise WeComLimitError("a WeCom text_notice card needs a URL (a link button or the public URL)")
        out["card_action"] = {"type": 1, "url": target}
        jumps = links
    if len(jumps) > JUMPS:
        raise WeComLimitError(f"a WeCom card holds at most {JUMPS} links besides its buttons")
    if jumps:
        out["jump_list"] = [_jump(b, limits.jump_title) for b in jumps]
    out["task_id"] = task_id
    return _ordered(out), complete


def _select(field: Any) -> dict[str, Any]:
    ids = [o.value for o in field.options]
    if len(set(ids)) != len(ids) or any(not i or len(i.encode()) > OPTION_ID_BYTES for i in ids):
        raise WeComLimitError(f"select {field.name!r}: option ids must be unique, 1-{OPTION_ID_BYTES} bytes")
    if len(field.name.encode()) > KEY_BYTES or not field.name:
        raise WeComLimitError(f"select name must be 1-{KEY_BYTES} bytes")
    out: dict[str, Any] = {
        "question_key": field.name,
        "title": ellipsize(field.label, OPTION_TEXT),
        "option_list": [{"id": o.value, "text": ellipsize(o.label, OPTION_TEXT)} for o in field.options],
    }
    if field.value in ids:
        out["selected_id"] = field.value
    return out


_ORDER = (
    "card_type",
    "main_title",
    "sub_title_text",
    "horizontal_content_list",
    "jump_list",
    "card_action",
    "select_list",
    "submit_button",
    "button_list",
    "task_id",
)


def _ordered(card: dict[str, Any]) -> dict[str, Any]:
    return {k: card[k] for k in _ORDER if k in card}


def app_messages(card: Card, *, task_id: str, fallback_url: str = "") -> list[dict[str, Any]]:
    """What ``message/send`` gets for ``card``: the template card, preceded by markdown with the
    full text when the card cannot hold it (msgtype + body only; the adapter adds touser, agentid)."""
    tc, complete = template_card(card, task_id=task_id, fallback_url=fallback_url)
    out: list[dict[str, Any]] = []
    if not complete:
        out += [
            {"msgtype": "markdown", "markdown": {"content": part}}
            for part in markdown_parts(card, APP_MARKDOWN_BYTES, with_buttons=False)
        ]
    out.append({"msgtype": "template_card", "template_card": tc})
    return out


def chat_messages(card: Card) -> list[dict[str, Any]]:
    """An app group chat (``appchat/send``): markdown only, links as links, actions as a hint."""
    return [
        {"msgtype": "markdown", "markdown": {"content": p}} for p in markdown_parts(card, APP_MARKDOWN_BYTES)
    ]


# ---------------------------------------------------------------- group robot


def _robot_text_notice(card: Card) -> dict[str, Any] | None:
    """A text_notice card when ``card`` fits one exactly: short, a link to open, no actions or mentions."""
    if card.mentions or any(not b.url for b in card.buttons) or len(card.title) > ROBOT_TITLE:
        return None
    if card.form is not None and (not card.form.link or _select_only(card.form)):
        return None
    if any(isinstance(b, Table | Progress) for b in card.blocks):
        return None
    links = _link_buttons(card)
    if not links or len(links) > JUMPS:
        return None
    horizontal = _fields_fit(card, ROBOT_VALUE)
    text = "\n".join(_plain_lines(card, skip_fields=horizontal))
    if len(text) > ROBOT_SUBTITLE or any(len(b.label) > ROBOT_JUMP_TITLE for b in links):
        return None
    tc: dict[str, Any] = {"card_type": "text_notice", "main_title": {"title": card.title}}
    if text:
        tc["sub_title_text"] = text
    if horizontal:
        tc["horizontal_content_list"] = _rows(card)
    tc["jump_list"] = [_jump(b, ROBOT_JUMP_TITLE) for b in links[:JUMPS]]
    tc["card_action"] = {"type": 1, "url": links[0].url}
    return {"msgtype": "template_card", "template_card": tc}


def robot_messages(card: Card) -> list[dict[str, Any]]:
    """What a team's group robot (``webhook/send``) gets: a text_notice card when the card fits one,
    else markdown split at 4096 bytes; ``<@userid>`` mentions end the last piece, and "all"
    (which robot markdown cannot mention) adds a short text message with ``mentioned_list``."""
    notice = _robot_text_notice(card)
    if notice is not None:
        return [notice]
    people = [m for m in card.mentions if m != "all"]
    suffix = " ".join(f"<@{_safe(m)}>" for m in people)
    out: list[dict[str, Any]] = [
        {"msgtype": "markdown", "markdown": {"content": part}}
        for part in markdown_parts(card, ROBOT_MARKDOWN_BYTES, suffix=suffix)
    ]
    if "all" in card.mentions:
        text = f"请大家查看：{ellipsize(card.title, 200)}"
        out.append({"msgtype": "text", "text": {"content": text, "mentioned_list": ["@all"]}})
    return out
