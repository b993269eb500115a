"""Report files uploaded in the console, kept server-side between the preview and the confirm.

A file is stored under ``[server] console_upload_dir`` as ``<random id>.<kind>`` with a small JSON
beside it (its SHA-256, original name, source, uploader, time). The browser only ever sends the id
back; an id that is not 32 hex characters, that expired, whose uploader differs, or whose file no
longer matches its digest is refused. Stale uploads are removed whenever a new one arrives.
"""

from __future__ import annotations

import json
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from sources.files import file_digest

EXPIRES = timedelta(hours=1)
KINDS = {".csv": "csv", ".txt": "csv", ".xlsx": "xlsx", ".xls": "xls"}
_ID = re.compile(r"^[0-9a-f]{32}$")
CHUNK = 1 << 16


class UploadRefused(Exception):
    """Why an upload cannot be kept or found (zh-CN, shown in the page's banner)."""


@dataclass(frozen=True)
class Upload:
    id: str
    path: Path
    name: str
    source: str
    person: str
    at: datetime
    digest: str
    size: int


def folder(configured: str) -> Path:
    base = Path(configured) if configured else Path(tempfile.gettempdir()) / "planloop-console-uploads"
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    return base


def kind_of(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in KINDS:
        raise UploadRefused(f"不支持的文件类型“{suffix or '无扩展名'}”：请上传 CSV、XLSX 或 XLS 报表")
    return KINDS[suffix]


def save(
    base: Path, stream: IO[bytes], name: str, *, source: str, person: str, now: datetime, max_bytes: int
) -> Upload:
    """Copy the uploaded stream to ``base`` (refusing more than ``max_bytes``) and describe it."""
    purge(base, now)
    suffix = Path(name).suffix.lower()
    kind_of(name)
    upload_id = secrets.token_hex(16)
    path = base / f"{upload_id}{suffix}"
    size = 0
    with path.open("wb") as out:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                out.close()
                path.unlink(missing_ok=True)
                raise UploadRefused(f"文件超过 {max_bytes / (1 << 20):.0f} MB 的上限（max_file_mb）")
            out.write(chunk)
    if size == 0:
        path.unlink(missing_ok=True)
        raise UploadRefused("文件是空的")
    upload = Upload(upload_id, path, Path(name).name[:200], source, person, now, file_digest(path), size)
    meta: dict[str, object] = {"name": upload.name, "source": source, "person": person, "at": now.isoformat()}
    meta |= {"digest": upload.digest, "size": size, "suffix": suffix}
    (base / f"{upload_id}.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return upload


def load(base: Path, upload_id: str, *, person: str, now: datetime) -> Upload:
    """The upload ``upload_id`` of ``person``, checked against its digest and its expiry."""
    gone = UploadRefused("这个上传已过期或不存在，请重新上传文件")
    if not _ID.match(upload_id):
        raise gone
    try:
        meta = json.loads((base / f"{upload_id}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise gone from None
    at = datetime.fromisoformat(meta["at"])
    path = base / f"{upload_id}{meta['suffix']}"
    if meta["person"] != person or now - at > EXPIRES or not path.is_file():
        raise gone
    if file_digest(path) != meta["digest"]:
        raise UploadRefused("上传的文件在预览后被改动过，请重新上传")
    return Upload(upload_id, path, meta["name"], meta["source"], person, at, meta["digest"], meta["size"])


def remove(upload: Upload) -> None:
    upload.path.unlink(missing_ok=True)
    upload.path.with_suffix(".json").unlink(missing_ok=True)


def purge(base: Path, now: datetime) -> None:
    """Remove uploads older than ``EXPIRES`` (never confirmed)."""
    for meta_path in base.glob("*.json"):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if now - datetime.fromisoformat(meta["at"]) <= EXPIRES:
                continue
            (base / f"{meta_path.stem}{meta['suffix']}").unlink(missing_ok=True)
        except (OSError, ValueError, KeyError):
            pass
        meta_path.unlink(missing_ok=True)
