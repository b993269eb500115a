"""The console's Data page: each source's last run, error and health, the newest sample per metric
and scope, "pull now", and a report upload with a preview before anything is stored.

- Pull now runs ``run_job("poll:<source>", explicit=True)``, the very run ``planloop run`` makes: it
  takes the next attempt of the job's claim in ``job_runs``, so it never collides with the
  leader-elected scheduler's own run of that source, and the source's backoff state is kept.
- The upload is read with ``bot.worker.polling.preview_import`` (the same reading and checks as
  ``planloop import FILE --source ID``, nothing written) and kept by ``bot.console.uploads``; the
  confirm imports that same stored file through ``import_file_report``. Both actions are audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, redirect, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from bot.console import uploads
from bot.console.render import page
from bot.console.texts import texts
from bot.console.web import Current, Refusal, back_to, check_post, current, field, nav, shown_error, to_login
from bot.services import Services
from sources.import_limits import MB, ImportLimits
from storage.db import transaction
from storage.metrics import recent_runs
from storage.models import AuditLog, Kpi, MetricSample, SourceState

PREVIEW_ROWS = 20  # samples shown in the preview; the rest are counted
PREVIEW_ERRORS = 50
BANNERS = {"pulled": "已拉取。", "pull_failed": "", "imported": "已导入。"}


@dataclass(frozen=True)
class SourceRow:
    id: str
    kind: str
    last_run: str
    loaded: int
    refused: int
    error: str
    failing: str  # the backoff's last error, when the source keeps failing


@dataclass(frozen=True)
class Freshness:
    metric: str
    scope: str
    last_day: str
    source: str
    fetched: str


def freshness(session: Session, metrics: set[str] | None) -> list[Freshness]:
    """The newest sample day per (metric, scope); only ``metrics`` when given (a leader's view)."""
    q = select(
        MetricSample.metric, MetricSample.scope, func.max(MetricSample.day), func.max(MetricSample.source),
        func.max(MetricSample.fetched_at),
    ).group_by(MetricSample.metric, MetricSample.scope).order_by(MetricSample.metric, MetricSample.scope)  # fmt: skip
    if metrics is not None:
        q = q.where(MetricSample.metric.in_(sorted(metrics)))
    return [
        Freshness(m, s, d.isoformat(), src or "", f.strftime("%Y-%m-%d %H:%M") if f else "")
        for m, s, d, src, f in session.execute(q)
    ]


def source_rows(session: Session, services: Services) -> list[SourceRow]:
    from bot.worker.jobs import SOURCE_HEALTH

    tz = services.settings.tz
    out = []
    for config in services.settings.sources:
        runs = recent_runs(session, config.id, limit=1)
        run = runs[0] if runs else None
        health = session.get(SourceState, (config.id, SOURCE_HEALTH))
        failing = ""
        if health is not None:
            try:
                failing = str(json.loads(health.value).get("error", ""))[:300]
            except ValueError:
                failing = ""
        out.append(
            SourceRow(
                config.id, str(config.get("kind", "")),
                run.started_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if run else "",
                run.rows_loaded if run else 0, run.rows_refused if run else 0,
                (run.error if run else "")[:300], failing,
            )
        )  # fmt: skip
    return out


def kpi_metrics(session: Session) -> set[str]:
    return {m for m in session.scalars(select(Kpi.metric)) if m}


def max_upload_bytes(services: Services, source_id: str) -> int:
    config = services.settings.source(source_id) if source_id else None
    try:
        limits = ImportLimits.from_config(config) if config is not None else ImportLimits()
    except ValueError:
        limits = ImportLimits()
    return int(limits.max_file_mb * MB)


def preview_of(result: Any) -> dict[str, Any]:
    samples = result.samples
    return {
        "rows_read": result.rows_read,
        "samples": len(samples),
        "cases": len(result.cases or ()),  # an after-sales (aftersales preset) export's cases
        "shown": [(s.metric, s.scope, s.date.isoformat(), str(s.value)) for s in samples[:PREVIEW_ROWS]],
        "columns": _mapped_columns(result.detail.get("columns")),
        "not_imported": list(result.detail.get("not_imported") or []),
        "refused": result.rows_refused,
        "errors": [str(e) for e in result.errors[:PREVIEW_ERRORS]],
        "file_refused": str(result.detail.get("refused", "")),
        "format": str(result.detail.get("format", "")),
        "encoding": str(result.detail.get("encoding_label", "")),
    }


def _mapped_columns(columns: Any) -> list[tuple[str, str]]:
    """(header, metric) of a metric report; an after-sales export names its recognised headers only."""
    if isinstance(columns, dict):
        return sorted((str(h), str(m)) for h, m in columns.items())
    if isinstance(columns, list | tuple):
        return [(str(h), "售后记录") for h in columns]
    return []


def add_routes(bp: Blueprint, services: Services) -> None:
    locale = services.settings.locale
    t = texts(locale)

    def base() -> Path:
        return uploads.folder(str(services.settings.extra.get("console_upload_dir", "") or ""))

    def opened(session: Session) -> Current | Response:
        found = current(services, session)
        if found is None:
            return to_login()
        if not found.viewer.may_open("data"):
            raise Refusal(403, "page_denied")
        return found

    def render(found: Current, *, banner: str = "", error: str = "", **values: Any) -> Response:
        with services.sessions() as session:
            admin = found.viewer.may("pull")
            rows = freshness(session, None if admin else kpi_metrics(session))
            sources = source_rows(session, services) if admin else []
        resp = page(
            "data.html", locale=locale, title=t["data"], here="data", viewer=found.viewer, csrf=found.signed.csrf,
            banner=error or banner, banner_error=bool(error), **nav(found.viewer), rows=rows, sources=sources,
            admin=admin, source_ids=[s.id for s in services.settings.sources], **({"preview": None} | values),
        )  # fmt: skip
        if admin:  # the upload's progress bar is a same-origin POST from this page's own script
            resp.headers["Content-Security-Policy"] += "; connect-src 'self'"
        return resp

    def back(found: Current, *, done: str = "", error: str = "") -> Response:
        return back_to("console.data", found, done=done, error=error)

    def audit(found: Current, action: str, subject: str, detail: dict[str, Any]) -> None:
        with transaction(services.sessions) as session:
            session.add(AuditLog(at=services.clock(), actor=found.viewer.person_id, action=action,
                                 subject=subject, detail=detail))  # fmt: skip

    def source_field(name: str = "source") -> str:
        source_id = field(name)
        if source_id and services.settings.source(source_id) is None:
            raise Refusal(400, "bad_source")
        return source_id

    @bp.get("/data")
    def data() -> Response:
        with services.sessions() as session:
            found = opened(session)
        if isinstance(found, Response):
            return found
        error = shown_error(found)
        return render(found, banner=BANNERS.get(request.args.get("done", ""), ""), error=error)

    @bp.post("/data/pull")
    def pull() -> Response:
        from bot.worker.jobs import run_job

        with services.sessions() as session:
            found = check_post(services, session)
        if not found.viewer.may("pull"):
            raise Refusal(403, "action_denied")
        source_id = source_field()
        if not source_id:
            raise Refusal(400, "bad_source")
        result = run_job(services, f"poll:{source_id}", services.clock(), explicit=True,
                         who=f"console:{found.viewer.person_id}")  # fmt: skip
        audit(
            found,
            "source.pull",
            f"source {source_id}",
            {"status": result.status, "reason": result.reason[:500]},
        )
        if result.status == "failed":
            return back(found, error=f"拉取 {source_id} 失败：{result.reason}")
        return back(found, done="pulled")

    @bp.post("/data/upload")
    def upload() -> Response:
        # the largest file any source accepts, plus the form's other fields and the multipart framing;
        # the chosen source's own limit is applied while the file is copied (uploads.save)
        largest = max(
            [
                max_upload_bytes(services, ""),
                *(max_upload_bytes(services, s.id) for s in services.settings.sources),
            ]
        )
        with services.sessions() as session:
            signed = current(services, session)  # the cookie only: the body is not read yet
        if signed is not None and signed.viewer.may("upload"):
            request.max_content_length = largest + MB  # anyone else stays at the app's MAX_BODY
        try:
            with services.sessions() as session:
                found = check_post(services, session)
        except RequestEntityTooLarge:
            raise Refusal(413, "upload_too_large", limit=str(largest // MB)) from None
        if not found.viewer.may("upload"):
            raise Refusal(403, "action_denied")
        source_id = source_field()
        limit = max_upload_bytes(services, source_id)
        sent = request.files.get("file")
        if sent is None or not sent.filename:
            return back(found, error="请选择一个报表文件")
        folder = base()
        try:
            kept = uploads.save(folder, sent.stream, sent.filename, source=source_id,
                                person=found.viewer.person_id, now=services.clock(), max_bytes=limit)  # fmt: skip
        except uploads.UploadRefused as exc:
            return back(found, error=str(exc))
        preview = url_for("console.preview", upload=kept.id)
        if request.headers.get("X-Planloop-Upload"):  # the page's script, showing upload progress
            return Response(json.dumps({"next": preview}), content_type="application/json")
        return redirect(preview, code=303)  # a refresh of the preview never sends the file again

    @bp.get("/data/preview")
    def preview() -> Response:
        with services.sessions() as session:
            found = opened(session)
        if isinstance(found, Response):
            return found
        if not found.viewer.may("upload"):
            raise Refusal(403, "action_denied")
        try:
            kept = uploads.load(base(), request.args.get("upload", "")[:64], person=found.viewer.person_id,
                                now=services.clock())  # fmt: skip
        except uploads.UploadRefused as exc:
            return back(found, error=str(exc))
        return show_preview(found, kept)

    def show_preview(found: Current, kept: uploads.Upload) -> Response:
        from bot.worker.polling import preview_import

        try:
            result = preview_import(services, kept.path, kept.source or None, label=kept.name)
        except Exception as exc:  # noqa: BLE001 - a config problem (bad columns) reads as a refusal
            uploads.remove(kept)
            return back(found, error=f"无法读取：{exc}")
        shown = preview_of(result)
        if not result.samples and not result.cases:
            uploads.remove(kept)
        return render(found, preview=shown, upload=kept)

    @bp.post("/data/confirm")
    def confirm() -> Response:
        from bot.worker.polling import import_file_report

        with services.sessions() as session:
            found = check_post(services, session)
        if not found.viewer.may("upload"):
            raise Refusal(403, "action_denied")
        folder = base()
        try:
            kept = uploads.load(folder, field("upload"), person=found.viewer.person_id, now=services.clock())
        except uploads.UploadRefused as exc:
            return back(found, error=str(exc))
        try:
            report = import_file_report(services, kept.path, kept.source or None)
        finally:
            uploads.remove(kept)
        audit(found, "import.file", f"file {kept.name}", {
            "source": kept.source, "digest": kept.digest, "size": kept.size, "loaded": report.loaded,
            "refused": report.refused, "inserted": report.inserted, "updated": report.updated, "run": report.run_id,
        })  # fmt: skip
        return back(found, done="imported")
