"""What a person typed stays text in every platform's markdown: no link, image or heading from it.

Builders write Markdown blocks in a small subset (``**bold**`` and line breaks; links travel as
buttons and form links, never inside text), and interpolate user text (plan items, appeal notes,
replies, names) into them. So a renderer may treat link-shaped brackets and every line-leading ``#``
in card text as typed text: ``inert`` swaps them for their full-width forms, which read the same
to a person and mean nothing to a markdown parser. Each renderer adds its platform's own tag and
mention escaping (Feishu: HTML entities; DingTalk and WeCom: full-width ``＜ ＞``; DingTalk: ``＠``).
"""

from __future__ import annotations

import re

_LINE_START_HASH = re.compile(r"^([ \t]*)#", re.MULTILINE)
_LINK_SHAPE = re.compile(r"\]\s*[(\[:]")  # [text](url), ![alt](src), [text][ref], [ref]: url
_BRACKETS = str.maketrans({"[": "［", "]": "］"})


def inert(text: str) -> str:
    """``[text](url)``, ``![alt](src)`` and reference links stay visible as typed but are no link or
    image (every bracket of such a text goes full-width); a line starting with ``#`` is no heading.
    Brackets that could form no link (``[@范围]``) are left alone."""
    if _LINK_SHAPE.search(text):
        text = text.translate(_BRACKETS)
    return _LINE_START_HASH.sub(r"\1＃", text)
