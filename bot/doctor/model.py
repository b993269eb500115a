"""What a check reports (``Line``) and how a bot's checklist is printed: pure, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum


class Status(Enum):
    OK = "ok"  # checked and fine
    FAIL = "fail"  # checked and wrong: the run exits 1
    SKIP = "skip"  # not applicable to this bot, or not available in this version
    UNKNOWN = "unknown"  # cannot be checked from here; the line says what to do by hand


SYMBOLS = {Status.OK: "✓", Status.FAIL: "✗", Status.SKIP: "–", Status.UNKNOWN: "?"}


@dataclass(frozen=True)
class Line:
    """One check: its status, its name, what was found and, when something is wrong, where to fix it."""

    status: Status
    check: str
    detail: str
    fix: str = ""

    def render(self, sep: str = ": ", arrow: str = " → ") -> str:
        text = f"{SYMBOLS[self.status]} {self.check}{sep}{self.detail}"
        return f"{text}{arrow}{self.fix}" if self.fix else text


def ok(check: str, detail: str) -> Line:
    return Line(Status.OK, check, detail)


def fail(check: str, detail: str, fix: str = "") -> Line:
    return Line(Status.FAIL, check, detail, fix)


def skip(check: str, detail: str) -> Line:
    return Line(Status.SKIP, check, detail)


def unknown(check: str, detail: str, fix: str = "") -> Line:
    return Line(Status.UNKNOWN, check, detail, fix)


def failed(lines: Iterable[Line]) -> bool:
    return any(line.status is Status.FAIL for line in lines)
