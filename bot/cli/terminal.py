"""Text from outside (file names, cell contents, error reasons) printed safely on a terminal.

A file name may hold ANSI escape sequences (``\\x1b[2J`` clears the screen, ``\\x1b]8;;`` makes
links), newlines that forge extra output lines, or bidi overrides that reverse what follows.
``shown`` spells every such character as a Python-style escape (``\\x1b``, ``\\n``, ``\\u202e``)
so the line reads as what it is.
"""

from __future__ import annotations

import unicodedata

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: object) -> str:
    """``text`` with control, format (bidi, zero-width) and line/paragraph separator characters
    escaped; everything printable, Chinese included, unchanged."""
    raw = str(text)
    if raw.isprintable():
        return raw
    return "".join(_escape(ch) if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in raw)
