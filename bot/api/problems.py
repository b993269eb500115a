"""Errors of the open API as RFC 9457 ``application/problem+json``, with a field-level ``errors`` list.

Handlers raise ``Problem``; the API app turns it (and pydantic's ``ValidationError``, Flask's 404
and 405, and anything unexpected) into a problem document. Never a stack trace, never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Response, request
from pydantic import BaseModel, Field, ValidationError

CONTENT_TYPE = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    422: "Unprocessable content",
    429: "Too many requests",
    503: "Service unavailable",
}


class FieldError(BaseModel):
    field: str = Field(description="where: a body path such as samples/3/value, or a parameter name")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    errors: list[FieldError] = Field(default_factory=list)


class ApiProblem(Exception):
    """Raised by the API's code; answered as a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Iterable[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})


def problem_response(
    status: int, detail: str, errors: Iterable[FieldError] = (), headers: Mapping[str, str] | None = None
) -> Response:
    body = Problem(title=TITLES.get(status, "Error"), status=status, detail=detail, errors=list(errors))
    return Response(
        json.dumps(body.model_dump(mode="json"), ensure_ascii=False),
        status=status,
        content_type=CONTENT_TYPE,
        headers=dict(headers or {}),
    )


def from_exception(exc: ApiProblem) -> Response:
    return problem_response(exc.status, exc.detail, exc.errors, exc.headers)


def _field(loc: Iterable[Any]) -> str:
    return "/".join(str(part) for part in loc) or "body"


def from_validation(exc: ValidationError) -> Response:
    """pydantic's errors, one per field; a body that is not JSON at all says so."""
    if request.method in ("POST", "PUT", "PATCH") and request.get_json(silent=True) is None:
        raw = request.get_data(cache=True)
        if raw:
            return problem_response(
                400, "the body is not valid JSON", [FieldError(field="body", message="not JSON")]
            )
    errors = [FieldError(field=_field(e.get("loc", ())), message=str(e.get("msg", ""))) for e in exc.errors()]
    return problem_response(422, f"{len(errors)} field(s) refused", errors)


PROBLEM_RESPONSE = {
    "description": "a problem document (RFC 9457)",
    "content": {CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
RATE_LIMITED = {
    **PROBLEM_RESPONSE,
    "description": "the token's rate limit; retry after the seconds in Retry-After",
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
}
