"""Card -> Feishu/Lark card JSON 2.0. Pure; user text cannot inject mentions or markup.

Shape (open.feishu.cn "卡片 JSON 2.0 结构"): ``{"schema": "2.0", "config", "header", "body":
{"elements": [...]}}``. JSON 2.0 refuses unknown properties, so every element below uses only
properties named in the component docs (markdown, div, column_set/column, hr, table, form,
input, select_static, button).

Escaping: Markdown and Note blocks are builder-written markdown in the shared subset
(``**bold**``, ``[text](url)``); ``&``, ``<`` and ``>`` are turned into entities so nothing in them
(or in user text interpolated into them) becomes an ``<at>``, ``<font>``, ``<link>`` or other
HTML tag. Everything else that carries user text (field values, progress labels, table
cells, titles, labels) goes into ``plain_text`` objects, which Feishu never parses. The only
``<at …>`` tags come from ``Card.mentions``, whose ids are checked against a strict pattern.

Limits: the im/v1 send/patch APIs refuse a card request body over 30 KB (error 230025), a
custom group robot refuses a body over 20 KB; ``check_size`` raises ``CardTooLarge`` first,
with a clear message, so an oversize card is a builder bug caught in tests, not a
surprise at delivery time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from cards.limits import limit
from cards.model import Button, Card, Divider, Fields, Form, Input, Markdown, Note, Progress, Table
from cards.render.literal import inert
from cards.render.text import bar

# Header colours: Feishu's header templates include all five neutral themes by name.
THEME = {"blue": "blue", "green": "green", "orange": "orange", "red": "red", "grey": "grey"}
BUTTON_TYPE = {"primary": "primary", "default": "default", "danger": "danger"}

# im/v1 create/patch: "卡片及富文本消息请求体最大不能超过30KB" (230025). We keep 1 KB of room for
# receive_id, msg_type and uuid around the card.
MAX_API_BYTES = limit("feishu", "api", "card JSON (content string)")  # cards/limits.py
# Custom group robot: the request body must not exceed 20 KB.
MAX_WEBHOOK_BYTES = limit("feishu", "webhook", "request body")
# A card with more components than this renders slowly or is refused [?: the 2.0 structure doc
# names a component cap; we stay well below it].
MAX_COMPONENTS = limit("feishu", "any", "components")
MAX_TABLE_PAGE = limit("feishu", "any", "table page_size")  # the table component's page_size is 1..10

SUBMIT_NAME = "planloop_submit"
FORM_NAME = "planloop_form"
_MENTION_ID = re.compile(r"^(all|[A-Za-z0-9_\-]{1,64})$")


class RenderError(ValueError):
    """The card cannot be expressed on Feishu (duplicate input names, a bad mention id)."""


class CardTooLarge(RenderError):
    """The rendered card is over a Feishu size limit."""


def escape_markdown(text: str) -> str:
    """Neutralise HTML-ish tags in card markdown: ``<at id=all>`` shows as text, never pings anyone;
    typed ``[text](url)``, images and headings stay text (cards/render/literal.py).

    Feishu's markdown component decodes the basic HTML entities, so ``&lt;at&gt;`` reads as
    ``<at>`` to a person and is inert to the renderer. ``&`` goes first so an entity the user
    typed (``&#60;at``) stays literal as well.
    """
    return inert(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def _plain(text: str) -> dict[str, str]:
    return {"tag": "plain_text", "content": text}


def _div(text: str, *, size: str = "", color: str = "") -> dict[str, Any]:
    body: dict[str, Any] = _plain(text)
    if size:
        body["text_size"] = size
    if color:
        body["text_color"] = color
    return {"tag": "div", "text": body}


def _markdown(text: str, *, size: str = "") -> dict[str, Any]:
    element: dict[str, Any] = {"tag": "markdown", "content": escape_markdown(text)}
    if size:
        element["text_size"] = size
    return element


def _columns(columns: list[list[dict[str, Any]]], *, width: str = "weighted") -> dict[str, Any]:
    cols = []
    for elements in columns:
        col: dict[str, Any] = {"tag": "column", "width": width, "elements": elements}
        if width == "weighted":
            col["weight"] = 1
        cols.append(col)
    return {"tag": "column_set", "columns": cols}


def _fields(block: Fields) -> list[dict[str, Any]]:
    """Label/value pairs two per line: a column set per pair of rows."""
    out = []
    rows = list(block.rows)
    for i in range(0, len(rows), 2):
        pair = rows[i : i + 2]
        columns = [[_div(r.label, size="notation", color="grey"), _div(r.value)] for r in pair]
        if len(columns) == 1:
            columns.append([])  # keep the half width so a lone last field lines up
        out.append(_columns(columns))
    return out


def _progress(block: Progress) -> dict[str, Any]:
    flag = "（落后）" if block.lagging else ""
    caption = f"  {block.caption}" if block.caption else ""
    return _div(f"{block.label}  {bar(block.ratio)}{flag}{caption}", color="red" if block.lagging else "")


def _table(block: Table) -> dict[str, Any]:
    names = [f"c{i}" for i in range(len(block.header))]
    return {
        "tag": "table",
        "page_size": max(1, min(MAX_TABLE_PAGE, len(block.rows))),
        "columns": [
            {"name": n, "display_name": h, "data_type": "text", "width": "auto"}
            for n, h in zip(names, block.header, strict=True)
        ],
        "rows": [{n: cell for n, cell in zip(names, row, strict=False)} for row in block.rows],
    }


def _callback_value(action: str, value: Mapping[str, str]) -> dict[str, str]:
    if "action" in value:
        raise RenderError(f"button value for {action!r} may not use the reserved key 'action'")
    return {"action": action, **{str(k): str(v) for k, v in value.items()}}


def _button(button: Button) -> dict[str, Any]:
    element: dict[str, Any] = {
        "tag": "button",
        "text": _plain(button.label),
        "type": BUTTON_TYPE.get(button.style, "default"),
    }
    if button.url:
        element["behaviors"] = [{"type": "open_url", "default_url": button.url}]
    elif button.action:
        element["behaviors"] = [{"type": "callback", "value": _callback_value(button.action, button.value)}]
    else:
        raise RenderError(f"button {button.label!r} has neither an action nor a url")
    return element


def _input(field: Input) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if field.kind == "select":
        # select_static has no label property in JSON 2.0; the label goes above it.
        out.append(_div(field.label + (" *" if field.required else ""), size="notation"))
        select: dict[str, Any] = {
            "tag": "select_static",
            "name": field.name,
            "width": "fill",
            "placeholder": _plain(field.placeholder or "请选择"),
            "options": [{"text": _plain(o.label), "value": o.value} for o in field.options],
        }
        if field.required:
            select["required"] = True
        if field.value and any(o.value == field.value for o in field.options):
            select["initial_option"] = field.value
        out.append(select)
    else:
        # Defaults (required false, label on top) are left out: a plan form repeats them per row
        # and the whole card must stay under 30 KB.
        element: dict[str, Any] = {
            "tag": "input",
            "name": field.name,
            "width": "fill",
            "label": _plain(field.label),
        }
        if field.required:
            element["required"] = True
        if field.placeholder:
            element["placeholder"] = _plain(field.placeholder)
        if field.value:
            element["default_value"] = field.value
        if field.kind == "textarea":
            element["input_type"] = "multiline_text"
            element["rows"] = 3
        # "number" stays a text input: Feishu has no numeric input type; the handler validates.
        out.append(element)
    if field.error:
        out.append(_div(f"✗ {field.error}", size="notation", color="red"))
    return out


def _form(form: Form) -> dict[str, Any]:
    names = [i.name for i in form.inputs]
    seen: set[str] = set()
    for name in names:
        if not name:
            raise RenderError(f"form {form.action!r} has an input without a name")
        if name in seen:
            raise RenderError(
                f"form {form.action!r} has two inputs named {name!r}; Feishu needs unique names"
            )
        if name in (SUBMIT_NAME, FORM_NAME):
            raise RenderError(f"input name {name!r} is reserved")
        seen.add(name)
    clash = seen & set(form.values)
    if clash:
        raise RenderError(f"form {form.action!r}: hidden values and inputs share names {sorted(clash)}")
    elements: list[dict[str, Any]] = []
    if form.error:
        elements.append(_div(form.error, color="red"))
    for field in form.inputs:
        elements.extend(_input(field))
    elements.append(
        {
            "tag": "button",
            "name": SUBMIT_NAME,
            "text": _plain(form.submit_label),
            "type": "primary",
            "form_action_type": "submit",
            # Hidden values ride on the submit button; the callback carries them in action.value
            # next to the inputs in action.form_value.
            "behaviors": [{"type": "callback", "value": _callback_value(form.action, form.values)}],
        }
    )
    return {"tag": "form", "name": FORM_NAME, "elements": elements}


def _mentions(ids: tuple[str, ...]) -> dict[str, Any]:
    for mention in ids:
        if not _MENTION_ID.match(mention):
            raise RenderError(f"mention id {mention!r} is not a Feishu open_id/user_id or 'all'")
    # Built here, not escaped: the ids are checked above, and this is the only <at> we emit.
    return {"tag": "markdown", "content": " ".join(f"<at id={m}></at>" for m in ids)}


def render(card: Card, *, interactive: bool = True) -> dict[str, Any]:
    """The card as Feishu JSON 2.0.

    ``interactive=False`` (a custom group robot gets no callbacks): callback buttons are left
    out and a form becomes a link to its web page. A form too big for a 30 KB card (many rows,
    many KPI options) falls back to that link as well, so the person can still file it; without
    a link the card is refused with CardTooLarge.
    """
    if not interactive or card.form is None:
        return _render(card, interactive=interactive, inline_form=False)
    try:
        return _render(card, interactive=True, inline_form=True)
    except CardTooLarge:
        if not card.form.link:
            raise
    return _render(card, interactive=True, inline_form=False, hint="内容较多，卡片放不下，请在网页中填写。")


def _render(card: Card, *, interactive: bool, inline_form: bool, hint: str = "") -> dict[str, Any]:
    elements: list[dict[str, Any]] = []
    if card.mentions:
        elements.append(_mentions(card.mentions))
    for block in card.blocks:
        if isinstance(block, Markdown):
            elements.append(_markdown(block.text))
        elif isinstance(block, Fields):
            elements.extend(_fields(block))
        elif isinstance(block, Progress):
            elements.append(_progress(block))
        elif isinstance(block, Table):
            elements.append(_table(block))
        elif isinstance(block, Note):
            elements.append(_markdown(block.text, size="notation"))
        elif isinstance(block, Divider):
            elements.append({"tag": "hr"})
    buttons = list(card.buttons)
    if card.form is not None:
        if inline_form:
            elements.append(_form(card.form))
        elif card.form.link:
            if hint:
                elements.append(_div(hint, size="notation", color="grey"))
            if not any(b.url == card.form.link for b in buttons):
                buttons.insert(0, Button("在网页中填写", url=card.form.link, style="primary"))
        else:
            elements.append(_div("请在与机器人的单聊中填写此表单。", size="notation", color="grey"))
    shown = [b for b in buttons if b.url or interactive]
    if shown:
        elements.append(_columns([[_button(b)] for b in shown], width="auto"))
    payload = {
        "schema": "2.0",
        "config": {"update_multi": True},
        "header": {"title": _plain(card.title), "template": THEME.get(card.theme, "blue")},
        "body": {"elements": elements},
    }
    count = _count_components(payload["body"])
    if count > MAX_COMPONENTS:
        raise CardTooLarge(f"card {card.title!r} has {count} components (Feishu limit {MAX_COMPONENTS})")
    check_size(payload, webhook=not interactive)
    return payload


def api_content(payload: Mapping[str, Any]) -> str:
    """The card as the im/v1 ``content`` string (the API wants a JSON *string*, not an object)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def encoded_size(payload: Mapping[str, Any], *, as_string: bool = True) -> int:
    """Bytes the card takes in a request body: as an im/v1 ``content`` string (quotes escaped), or
    as an object (custom robot ``card``)."""
    inner = api_content(payload)
    return len((json.dumps(inner, ensure_ascii=False) if as_string else inner).encode("utf-8"))


def check_size(payload: Mapping[str, Any], *, webhook: bool = False) -> None:
    """Raise CardTooLarge past the im/v1 limit (``content`` string) or the custom robot's (object)."""
    limit = MAX_WEBHOOK_BYTES if webhook else MAX_API_BYTES
    size = encoded_size(payload, as_string=not webhook)
    if size > limit:
        title = payload.get("header", {}).get("title", {}).get("content", "")
        raise CardTooLarge(
            f"card {title!r} is {size} bytes; Feishu takes at most {'20' if webhook else '30'} KB per "
            f"{'group robot' if webhook else 'API'} message ({limit} bytes for the card): split or shorten it"
        )


def _count_components(node: Any) -> int:
    if isinstance(node, dict):
        own = 1 if node.get("tag") not in (None, "plain_text") else 0
        return own + sum(_count_components(v) for v in node.values())
    if isinstance(node, list):
        return sum(_count_components(v) for v in node)
    return 0
