"""Pages and cache validators of the API's lists: ``limit`` / ``cursor`` (an opaque offset) and
a strong ``ETag`` over the answer's bytes, honoured in ``If-None-Match`` (304)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from flask import Response, request
from pydantic import BaseModel

from bot.api.problems import ApiProblem, FieldError

T = TypeVar("T")


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        offset = json.loads(raw)["o"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        offset = None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ApiProblem(
            422,
            "cursor is not one this API gave",
            errors=[FieldError(field="cursor", message="unknown cursor")],
        )
    return offset


def page(rows: Sequence[T], limit: int, cursor: str | None) -> tuple[list[T], str | None]:
    """One page of ``rows`` and the cursor of the next (None on the last page)."""
    start = decode_cursor(cursor)
    chunk = list(rows[start : start + limit])
    more = start + limit < len(rows)
    return chunk, encode_cursor(start + limit) if more else None


def dump(model: BaseModel) -> dict[str, Any]:
    """The model as JSON data; ``next_cursor`` only when a page was cut (beside the export's keys)."""
    data = model.model_dump(mode="json", by_alias=True)
    if data.get("next_cursor", "") is None:
        data.pop("next_cursor")
    return data


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status=status, content_type="application/json", headers=headers or {})


def cached(model: BaseModel) -> Response:
    """A read's answer with its ETag; 304 without a body when the client already has it."""
    data = dump(model)
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    etag = '"' + hashlib.sha256(body.encode("utf-8")).hexdigest()[:32] + '"'
    asked = request.headers.get("If-None-Match", "")
    if etag in {tag.strip().removeprefix("W/") for tag in asked.split(",")} or asked.strip() == "*":
        return Response(status=304, headers={"ETag": etag})
    return Response(body, status=200, content_type="application/json", headers={"ETag": etag})
