"""Card -> HTML fragment (the simulator and the /p/ pages). Pure; every user string is escaped."""

from __future__ import annotations

import json
import re
from html import escape

from cards.model import Card, Divider, Fields, Form, Markdown, Note, Progress, Table

_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+|/[^)\s]*)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def markdown(text: str) -> str:
    """The shared markdown subset, escaped first so user text cannot inject markup."""
    out = escape(text)
    out = _LINK.sub(lambda m: f'<a href="{m.group(2)}">{m.group(1)}</a>', out)
    out = _BOLD.sub(r"<b>\1</b>", out)
    return out.replace("\n", "<br>")


def _progress(block: Progress) -> str:
    label = escape(block.label)
    caption = f'<span class="cap">{escape(block.caption)}</span>' if block.caption else ""
    if block.ratio is None:
        return f'<div class="prog nodata"><span>{label}</span><span class="nd">暂无数据</span>{caption}</div>'
    pct = block.ratio * 100
    width = max(0.0, min(pct, 100.0))
    cls = "prog lag" if block.lagging else "prog"
    return (
        f'<div class="{cls}"><span>{label}</span>'
        f'<span class="bar"><span class="fill" style="width:{width:.0f}%"></span></span>'
        f"<span>{pct:.0f}%</span>{caption}</div>"
    )


def _form(form: Form) -> str:
    parts = [f'<form class="cardform" data-action="{escape(form.action)}">']
    if form.error:
        parts.append(f'<div class="err">{escape(form.error)}</div>')
    for name, value in form.values.items():
        parts.append(f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">')
    for field in form.inputs:
        req = " required" if field.required else ""
        label = f'<label for="f-{escape(field.name)}">{escape(field.label)}{"*" if field.required else ""}</label>'
        ident = f'id="f-{escape(field.name)}" name="{escape(field.name)}"'
        if field.kind == "select":
            opts = "".join(
                f'<option value="{escape(o.value)}"{" selected" if o.value == field.value else ""}>'
                f"{escape(o.label)}</option>"
                for o in field.options
            )
            control = f'<select {ident}{req}><option value="">请选择</option>{opts}</select>'
        elif field.kind == "textarea":
            control = f'<textarea {ident} placeholder="{escape(field.placeholder)}"{req}>{escape(field.value)}</textarea>'
        else:
            kind = "number" if field.kind == "number" else "text"
            control = (
                f'<input type="{kind}" {ident} value="{escape(field.value)}" '
                f'placeholder="{escape(field.placeholder)}"{req}>'
            )
        err = f'<div class="err">{escape(field.error)}</div>' if field.error else ""
        parts.append(f'<div class="fld">{label}{control}{err}</div>')
    parts.append(f'<button type="submit" class="primary">{escape(form.submit_label)}</button></form>')
    return "".join(parts)


def render(card: Card) -> str:
    parts = [f'<div class="card theme-{card.theme}"><div class="title">{escape(card.title)}</div>']
    for block in card.blocks:
        if isinstance(block, Markdown):
            parts.append(f'<div class="md">{markdown(block.text)}</div>')
        elif isinstance(block, Fields):
            rows = "".join(f"<dt>{escape(r.label)}</dt><dd>{escape(r.value)}</dd>" for r in block.rows)
            parts.append(f'<dl class="fields">{rows}</dl>')
        elif isinstance(block, Progress):
            parts.append(_progress(block))
        elif isinstance(block, Table):
            head = "".join(f"<th>{escape(h)}</th>" for h in block.header)
            body = "".join(
                "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in block.rows
            )
            parts.append(f'<table class="tbl"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')
        elif isinstance(block, Note):
            parts.append(f'<div class="note">{markdown(block.text)}</div>')
        elif isinstance(block, Divider):
            parts.append("<hr>")
    if card.form is not None:
        parts.append(_form(card.form))
    if card.buttons:
        buttons = []
        for b in card.buttons:
            if b.url:
                buttons.append(
                    f'<a class="btn {b.style}" href="{escape(b.url)}" target="_blank">{escape(b.label)}</a>'
                )
            else:
                value = escape(json.dumps(dict(b.value), ensure_ascii=False))
                buttons.append(
                    f'<button class="btn {b.style}" data-action="{escape(b.action)}" data-value="{value}">'
                    f"{escape(b.label)}</button>"
                )
        parts.append(f'<div class="buttons">{"".join(buttons)}</div>')
    parts.append("</div>")
    return "".join(parts)
