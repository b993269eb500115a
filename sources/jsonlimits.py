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

# a bracket, a whole string (possessive: no backtracking), or a lone quote (an unterminated string)
_TOKENS = re.compile(r'[\[\]{}]|"(?:[^"\\]++|\\.)*+"|"', re.DOTALL)


class JsonLimitError(ValueError):
    """The text is larger or deeper than allowed; the message names the limit."""

    def __init__(self, message: str, limit: str):
        super().__init__(message)
        self.limit = limit


def depth(text: str, stop_after: int = MAX_DEPTH) -> int:
    """The deepest nesting of arrays/objects in ``text`` (stops counting past ``stop_after``).

    Brackets inside strings do not count. Invalid JSON gives some number; the decoder then
    refuses it anyway. Linear: an unterminated string ends the scan."""
    deepest = level = 0
    for m in _TOKENS.finditer(text):
        char = m.group()
        if char in "[{":
            level += 1
            if level > deepest:
                deepest = level
                if deepest > stop_after:
                    return deepest
        elif char in "]}":
            level -= 1
        elif char == '"':
            return deepest  # a quote that opens no complete string: invalid, the decoder says so
    return deepest


def loads(raw: bytes | str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` within bounds: JsonLimitError (a ValueError) names the bound that was hit."""
    if len(raw) > max_bytes:
        raise JsonLimitError(f"JSON larger than {max_bytes} bytes", "max_bytes")
    if isinstance(raw, bytes | bytearray):
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")  # as json.loads does
    else:
        text = raw
    openers = text.count("[") + text.count("{")  # C speed: most events cannot nest that deep at all
    if openers > max_depth and depth(text, max_depth) > max_depth:
        raise JsonLimitError(f"JSON nested deeper than {max_depth} levels", "max_depth")
    return json.loads(text)
