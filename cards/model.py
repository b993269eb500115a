"""Card: the neutral message model. Builders make Cards, renderers turn them into platform JSON.

A Card is plain data, so it can be stored in the outbox (``to_dict``/``from_dict``) and
rendered later by whichever platform delivers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Theme = Literal["blue", "green", "orange", "red", "grey"]
InputKind = Literal["text", "textarea", "number", "select"]
ButtonStyle = Literal["primary", "default", "danger"]


@dataclass(frozen=True)
class Markdown:
    """A paragraph in the small markdown subset every platform shares: **bold**, [link](url), line breaks."""

    text: str


@dataclass(frozen=True)
class Field:
    label: str
    value: str


@dataclass(frozen=True)
class Fields:
    """Label/value rows, shown two per line where the platform can."""

    rows: tuple[Field, ...]


@dataclass(frozen=True)
class Progress:
    """A progress bar; ``ratio`` None means "no data" and is never drawn as 0 %."""

    label: str
    ratio: float | None
    caption: str = ""
    lagging: bool = False


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Note:
    """Small grey text under the content (sources, timestamps, hints)."""

    text: str


@dataclass(frozen=True)
class Divider:
    pass


Block = Markdown | Fields | Progress | Table | Note | Divider


@dataclass(frozen=True)
class Option:
    value: str
    label: str


@dataclass(frozen=True)
class Input:
    name: str
    label: str
    kind: InputKind = "text"
    options: tuple[Option, ...] = ()
    value: str = ""
    required: bool = False
    placeholder: str = ""
    error: str = ""


@dataclass(frozen=True)
class Form:
    """A form submitted as one action; its input values arrive in ``Inbound.values``."""

    action: str
    inputs: tuple[Input, ...]
    submit_label: str = "提交"
    values: Mapping[str, str] = field(default_factory=dict)  # hidden values sent with the submit
    error: str = ""
    link: str = ""  # the same form as a web page, for platforms whose cards have no text input


@dataclass(frozen=True)
class Button:
    """A callback button (``action`` + ``value``) or a link button (``url``)."""

    label: str
    action: str = ""
    value: Mapping[str, str] = field(default_factory=dict)
    url: str = ""
    style: ButtonStyle = "default"


@dataclass(frozen=True)
class Card:
    title: str
    blocks: tuple[Block, ...] = ()
    buttons: tuple[Button, ...] = ()
    form: Form | None = None
    theme: Theme = "blue"
    mentions: tuple[str, ...] = ()  # platform user ids on the delivering bot; "all" for everyone
    toast: str = ""  # a short confirmation where the platform shows one (Feishu)

    def to_dict(self) -> dict[str, Any]:
        return _dump(self)

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Card:
        return _load_card(data)


_BLOCK_TYPES: dict[str, type] = {
    "markdown": Markdown,
    "fields": Fields,
    "progress": Progress,
    "table": Table,
    "note": Note,
    "divider": Divider,
}
_BLOCK_NAMES = {cls: name for name, cls in _BLOCK_TYPES.items()}


def _dump(card: Card) -> dict[str, Any]:
    out: dict[str, Any] = {"title": card.title, "theme": card.theme}
    out["blocks"] = [_dump_block(b) for b in card.blocks]
    out["buttons"] = [
        {"label": b.label, "action": b.action, "value": dict(b.value), "url": b.url, "style": b.style}
        for b in card.buttons
    ]
    if card.form is not None:
        f = card.form
        out["form"] = {
            "action": f.action,
            "submit_label": f.submit_label,
            "values": dict(f.values),
            "error": f.error,
            "link": f.link,
            "inputs": [
                {
                    "name": i.name,
                    "label": i.label,
                    "kind": i.kind,
                    "options": [{"value": o.value, "label": o.label} for o in i.options],
                    "value": i.value,
                    "required": i.required,
                    "placeholder": i.placeholder,
                    "error": i.error,
                }
                for i in f.inputs
            ],
        }
    if card.mentions:
        out["mentions"] = list(card.mentions)
    if card.toast:
        out["toast"] = card.toast
    return out


def _dump_block(block: Block) -> dict[str, Any]:
    name = _BLOCK_NAMES[type(block)]
    if isinstance(block, Fields):
        return {"type": name, "rows": [[r.label, r.value] for r in block.rows]}
    if isinstance(block, Table):
        return {"type": name, "header": list(block.header), "rows": [list(r) for r in block.rows]}
    if isinstance(block, Divider):
        return {"type": name}
    return {"type": name, **block.__dict__}


def _load_block(data: Mapping[str, Any]) -> Block:
    kind = data["type"]
    if kind == "fields":
        return Fields(tuple(Field(label, value) for label, value in data["rows"]))
    if kind == "table":
        return Table(tuple(data["header"]), tuple(tuple(r) for r in data["rows"]))
    if kind == "divider":
        return Divider()
    cls = _BLOCK_TYPES[kind]
    return cls(**{k: v for k, v in data.items() if k != "type"})


def _load_card(data: Mapping[str, Any]) -> Card:
    form = None
    if data.get("form"):
        f = data["form"]
        form = Form(
            action=f["action"],
            submit_label=f.get("submit_label", "提交"),
            values=dict(f.get("values", {})),
            error=f.get("error", ""),
            link=f.get("link", ""),
            inputs=tuple(
                Input(
                    name=i["name"],
                    label=i["label"],
                    kind=i.get("kind", "text"),
                    options=tuple(Option(o["value"], o["label"]) for o in i.get("options", [])),
                    value=i.get("value", ""),
                    required=i.get("required", False),
                    placeholder=i.get("placeholder", ""),
                    error=i.get("error", ""),
                )
                for i in f["inputs"]
            ),
        )
    return Card(
        title=data["title"],
        theme=data.get("theme", "blue"),
        blocks=tuple(_load_block(b) for b in data.get("blocks", [])),
        buttons=tuple(
            Button(
                label=b["label"],
                action=b.get("action", ""),
                value=dict(b.get("value", {})),
                url=b.get("url", ""),
                style=b.get("style", "default"),
            )
            for b in data.get("buttons", [])
        ),
        form=form,
        mentions=tuple(data.get("mentions", ())),
        toast=data.get("toast", ""),
    )
