"""JSON with a size and a nesting bound, for every body the service parses from outside.

``json.loads`` recurses once per nesting level: a few KB of ``[[[[…`` raise RecursionError (and
deeper, in other decoders, overflow the stack). ``loads`` measures the nesting first, with a
linear scan that skips string contents, and refuses before the decoder sees the text.

Limits (docs/security.md): ``MAX_DEPTH`` levels of arrays/objects; ``max_bytes`` per caller
(inbound webhooks 1 MiB, an http_json source's ``max_bytes``).
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64  # the deepest platform event nests about 8 levels; a source's answer rarely 10
MAX_BYTES = 1024 * 1024

_STRUCTURE = re.compile(r'["\[\]{}]')
_STRING_REST = re.compile(r'(?:[^"\\]++|\\.)*+"', re.DOTALL)  # possessive: no backtracking


class JsonLimitError(ValueError):
    """The text is larger or deeper than allowed; the message names the limit."""

    def __init__(self, message: str, limit: str):
        super().__init__(message)
        self.limit = limit


def depth(text: str, stop_after: int = MAX_DEPTH) -> int:
    """The deepest nesting of arrays/objects in ``text`` (stops counting past ``stop_after``).

    Brackets inside strings do not count. Invalid JSON gives some number; the decoder then
    refuses it anyway."""
    deepest = level = pos = 0
    search = _STRUCTURE.search
    while True:
        m = search(text, pos)
        if m is None:
            return deepest
        char = m.group()
        if char == '"':
            end = _STRING_REST.match(text, m.end())
            if end is None:
                return deepest  # unterminated string: invalid, the decoder says so
            pos = end.end()
            continue
        if char in "[{":
            level += 1
            if level > deepest:
                deepest = level
                if deepest > stop_after:
                    return deepest
        else:
            level -= 1
        pos = m.end()


def loads(raw: bytes | str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` within bounds: JsonLimitError (a ValueError) names the bound that was hit."""
    if len(raw) > max_bytes:
        raise JsonLimitError(f"JSON larger than {max_bytes} bytes", "max_bytes")
    if isinstance(raw, bytes | bytearray):
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")  # as json.loads does
    else:
        text = raw
    if depth(text, max_depth) > max_depth:
        raise JsonLimitError(f"JSON nested deeper than {max_depth} levels", "max_depth")
    return json.loads(text)
