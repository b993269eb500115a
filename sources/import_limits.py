"""Bounds on a report file before and while it is read, so a crafted file is refused in seconds.

An XLSX is a zip of XML: 600 KB can unpack to gigabytes of shared strings, a tiny sheet can
declare ``A1:XFD1048576`` (openpyxl would pad every row to 16,384 cells), and a few MB can hold
millions of rows. ``check_file`` looks at the file's size and, for a zip, at every member's
declared size and compression ratio before any XML is parsed (Python's zipfile never inflates a
member past its declared size: a lying header fails its CRC). ``bounded_rows`` counts rows,
columns and cell length while the rows stream, whatever the sheet declares.

Every limit is a key of a file source's ``[[sources]]`` entry (docs/security.md); the defaults
are far above any real shop report.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

MB = 1024 * 1024
SMALL_MEMBER = 1 * MB  # members smaller than this may compress as well as they like


class LimitRefused(Exception):
    """A bound was hit; ``reason`` (zh-CN) names the limit and its config key."""

    def __init__(self, reason: str, line: int = 0):
        super().__init__(reason)
        self.reason = reason
        self.line = line


@dataclass(frozen=True)
class ImportLimits:
    max_file_mb: float = 50
    max_unzipped_mb: float = 256  # all members of an XLSX together
    max_shared_strings_mb: float = 32  # openpyxl holds every shared string in memory
    max_zip_ratio: float = 100  # uncompressed / compressed, per member of 1 MB or more
    max_zip_members: int = 10_000
    max_rows: int = 200_000
    max_columns: int = 1_000
    max_cell_chars: int = 32_767  # Excel's own limit for one cell

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | Any) -> ImportLimits:
        """The limits a ``[[sources]]`` entry sets (same key names); the rest stay at the defaults."""
        values: dict[str, Any] = {}
        for name, default in cls().__dict__.items():
            raw = config.get(name)
            if raw is None:
                continue
            try:
                value = type(default)(raw)
            except (TypeError, ValueError):
                raise ValueError(f"{name} 应是一个数字，而不是 {raw!r}") from None
            if value <= 0:
                raise ValueError(f"{name} 应大于 0")
            values[name] = value
        return cls(**values)


def _mb(n: float) -> str:
    return f"{n / MB:.1f} MB"


def check_file(path: Path, kind: str, limits: ImportLimits) -> None:
    """Before parsing: the file's size; for an XLSX, its members' declared sizes and ratios."""
    size = path.stat().st_size
    if size > limits.max_file_mb * MB:
        raise LimitRefused(f"文件过大：{_mb(size)}，上限 {limits.max_file_mb:g} MB（max_file_mb）")
    if kind != "xlsx":
        return
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise LimitRefused(f"XLSX 文件损坏或无法打开：{exc}") from None
    if len(members) > limits.max_zip_members:
        raise LimitRefused(
            f"XLSX 内含 {len(members)} 个部件，上限 {limits.max_zip_members}（max_zip_members）"
        )
    total = 0
    for m in members:
        total += m.file_size
        if total > limits.max_unzipped_mb * MB:
            raise LimitRefused(
                f"XLSX 解压后超过 {limits.max_unzipped_mb:g} MB（max_unzipped_mb）：疑似压缩炸弹，未读取"
            )
        if m.file_size >= SMALL_MEMBER and m.file_size > limits.max_zip_ratio * max(m.compress_size, 1):
            ratio = m.file_size / max(m.compress_size, 1)
            raise LimitRefused(
                f"XLSX 部件 {m.filename} 压缩比 {ratio:.0f}:1，上限 {limits.max_zip_ratio:g}:1"
                "（max_zip_ratio）：疑似压缩炸弹，未读取"
            )
        if (
            m.filename.lower().endswith("sharedstrings.xml")
            and m.file_size > limits.max_shared_strings_mb * MB
        ):
            raise LimitRefused(
                f"XLSX 共享字符串解压后 {_mb(m.file_size)}，上限 {limits.max_shared_strings_mb:g} MB"
                "（max_shared_strings_mb）"
            )


_ROW_TAG = re.compile(rb"<(?:\w+:)?row[\s>/]")


def count_rows(stream: IO[bytes], stop_after: int) -> int:
    """Row elements in a sheet's XML, counted on the raw bytes (no parsing), stopping once past
    ``stop_after``: a sheet of millions of rows is refused in a second, before openpyxl reads it."""
    count, carry = 0, b""
    while chunk := stream.read(1 << 20):
        data = carry + chunk
        # the tail kept from the last chunk was counted then; a tag cut in two is counted now
        count += len(_ROW_TAG.findall(data)) - len(_ROW_TAG.findall(carry))
        if count > stop_after:
            return count
        carry = data[-64:]
    return count


def bounded_rows(
    rows: Iterator[tuple[int, list[object]]], limits: ImportLimits
) -> Iterator[tuple[int, list[object]]]:
    """The rows as they stream, refused at the first one past a row, column or cell bound."""
    for count, (line, cells) in enumerate(rows, start=1):
        if count > limits.max_rows:
            raise LimitRefused(f"行数超过上限 {limits.max_rows}（max_rows），文件未导入", line)
        if len(cells) > limits.max_columns:
            raise LimitRefused(
                f"第 {line} 行有 {len(cells)} 列，上限 {limits.max_columns}（max_columns），文件未导入", line
            )
        for cell in cells:
            if isinstance(cell, str) and len(cell) > limits.max_cell_chars:
                raise LimitRefused(
                    f"第 {line} 行有一格长 {len(cell)} 字符，上限 {limits.max_cell_chars}（max_cell_chars），文件未导入",
                    line,
                )
        yield line, cells
