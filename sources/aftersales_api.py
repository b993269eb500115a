"""After-sales cases from the four shop APIs (``aftersales = true`` on a taobao/jd/pdd/doudian source).

The shop connector's own ``call`` is used, so signing, retries, token refresh and NeedsAdmin are
the ones its orders already go through; the cases are listed by *update* time over the poll
window, so a case finished today that was opened last week is read again and updated.
API names and fields: docs/aftersales.md.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sources.base import FetchResult, NeedsAdmin, SourceConfigLike, SourceDeps, Window
from sources.cases import Case
from sources.platform import MAX_PAGES, PlatformSource

TOP_FIELDS = "refund_id,tid,status,created,modified,reason"
TOP_FINAL = {"SUCCESS", "CLOSED"}
# pdd.refund.list.increment.get after_sales_status values after which nothing more happens
PDD_FINAL = {9, 10, 11, 12, 13, 16, 17, 24, 25}
PDD_SPAN = timedelta(minutes=30)  # "开始时间结束时间间距不超过 30 分钟"


def _epoch(value: object) -> datetime | None:
    """Unix seconds (or milliseconds) as an aware datetime; None for 0 / empty."""
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    if number <= 0:
        return None
    if number > 10**11:
        number //= 1000
    return datetime.fromtimestamp(number, UTC)


def _when(source: PlatformSource, value: object) -> datetime | None:
    """A platform time given as ``yyyy-MM-dd HH:mm:ss`` (Beijing) or as Unix seconds/milliseconds."""
    if value in (None, "", 0, "0"):
        return None
    text = str(value)
    if text.isdigit():
        return _epoch(text)
    return source.local(text)


def _taobao(source: PlatformSource, start: datetime, end: datetime, now: datetime) -> list[Case]:
    from sources.taobao import TaobaoSource, top_timestamp

    assert isinstance(source, TaobaoSource)
    rows = source._pages(
        "taobao.refunds.receive.get",
        {
            "fields": TOP_FIELDS,
            "start_modified": top_timestamp(start),
            "end_modified": top_timestamp(end),
            "use_has_next": True,
        },
        "refunds",
        "refund",
        now,
    )
    cases = []
    for r in rows:
        opened = _when(source, r.get("created"))
        if opened is None:
            continue
        status = str(r.get("status") or "")
        closed = _when(source, r.get("modified")) if status in TOP_FINAL else None
        cases.append(
            Case(
                source.id,
                str(r.get("refund_id")),
                opened,
                closed,
                status,
                str(r.get("reason") or ""),
                source.id,
            )
        )
    return cases


def _pdd(source: PlatformSource, start: datetime, end: datetime, now: datetime) -> list[Case]:
    rows: list[dict[str, Any]] = []
    slice_start = start
    while slice_start < end:
        slice_end = min(slice_start + PDD_SPAN, end)
        for page in range(1, MAX_PAGES + 1):
            body = source.call(
                "pdd.refund.list.increment.get",
                {
                    "after_sales_status": 1,
                    "after_sales_type": 1,
                    "start_updated_at": int(slice_start.timestamp()),
                    "end_updated_at": int(slice_end.timestamp()),
                    "page": page,
                    "page_size": source.page_size,
                },
                now,
            )
            batch = body.get("refund_list") or []
            rows.extend(batch)
            if not batch or page * source.page_size >= int(body.get("total_count") or 0):
                break
        slice_start = slice_end
    cases = []
    for r in rows:
        opened = _when(source, r.get("created_time"))
        if opened is None:
            continue
        try:
            status = int(r.get("after_sales_status") or 0)
        except (TypeError, ValueError):
            status = 0
        closed = _when(source, r.get("updated_time")) if status in PDD_FINAL else None
        cases.append(
            Case(
                source.id,
                str(r.get("id")),
                opened,
                closed,
                str(status),
                str(r.get("after_sale_reason") or ""),
                source.id,
            )
        )
    return cases


def _first_list(body: Any) -> tuple[list[dict[str, Any]], int | None]:
    """JD wraps results in a layer whose name the public pages do not show: take the first list
    of objects (and a ``total``/``totalCount`` next to it)."""
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, list) and all(isinstance(v, dict) for v in value):
                total = body.get("total", body.get("totalCount"))
                return value, int(total) if total is not None else None
        for value in body.values():
            found, total = _first_list(value)
            if found or total is not None:
                return found, total
    return [], None


def _jd(source: PlatformSource, start: datetime, end: datetime, now: datetime) -> list[Case]:
    from sources.jd import BEIJING

    fmt = "%Y-%m-%d %H:%M:%S"
    rows: list[dict[str, Any]] = []
    for page in range(1, MAX_PAGES + 1):
        body = source.call(
            "jingdong.asc.query.list",
            {
                "updateTimeBegin": start.astimezone(BEIJING).strftime(fmt),
                "updateTimeEnd": end.astimezone(BEIJING).strftime(fmt),
                "pageNumber": page,
                "pageSize": source.page_size,
            },
            now,
        )
        batch, total = _first_list(body)
        rows.extend(batch)
        if not batch or (total is not None and len(rows) >= total) or len(batch) < source.page_size:
            break
    cases = []
    for r in rows:
        opened = _when(source, r.get("applyTime") or r.get("afsApplyTime"))
        case_id = r.get("serviceId") or r.get("afsServiceId")
        if opened is None or not case_id:
            continue
        closed = _when(source, r.get("finishTime") or r.get("processedDate"))
        status = str(
            r.get("serviceStatusName") or r.get("afsServiceStateString") or r.get("serviceStatus") or ""
        )
        reason = str(r.get("questionTypeName") or r.get("questionDesc") or "")
        cases.append(Case(source.id, str(case_id), opened, closed, status, reason, source.id))
    return cases


def _doudian(source: PlatformSource, start: datetime, end: datetime, now: datetime) -> list[Case]:
    items: list[dict[str, Any]] = []
    for page in range(MAX_PAGES):  # pages count from 0
        data = source.call(
            "afterSale.List",
            {
                "update_start_time": int(start.timestamp()),
                "update_end_time": int(end.timestamp()),
                "order_by": ["update_time asc"],
                "page": page,
                "size": source.page_size,
            },
            now,
        )
        batch = data.get("items") or []
        items.extend(batch)
        if not batch or not data.get("has_more"):
            break
    cases = []
    for item in items:
        info = item.get("aftersale_info") or {}
        text = item.get("text_part") or {}
        opened = _epoch(info.get("apply_time") or info.get("create_time"))
        if opened is None or not info.get("aftersale_id"):
            continue
        status = str(text.get("aftersale_status_text") or info.get("aftersale_status") or "")
        cases.append(
            Case(
                source.id,
                str(info["aftersale_id"]),
                opened,
                _epoch(info.get("aftersale_status_to_final_time")),
                status,
                str(text.get("reason_text") or ""),
                source.id,
            )
        )
    return cases


LISTERS: dict[str, Callable[[PlatformSource, datetime, datetime, datetime], list[Case]]] = {
    "taobao": _taobao,
    "jd": _jd,
    "pdd": _pdd,
    "doudian": _doudian,
}


class AftersalesPoller:
    """A shop source that also lists after-sales cases; ``orders = false`` skips its orders."""

    def __init__(self, config: SourceConfigLike, inner: PlatformSource):
        self.id = config.id
        self.kind = inner.kind
        self.inner = inner
        self.with_orders = bool(config.get("orders", True))

    def fetch(self, window: Window, now: datetime) -> FetchResult:
        if self.with_orders:
            result = self.inner.fetch(window, now)
        else:
            result = FetchResult()
            ensure_self_token = getattr(self.inner, "ensure_self_token", None)
            if ensure_self_token is not None:
                ensure_self_token(now)  # a Doudian 自用型 app makes its own token from the shop id
            token = self.inner.tokens.current()
            if token is None:
                raise NeedsAdmin(f"{self.inner.label}还没有授权：请在配置里填入 access_token（或 session）")
            if token.expires_soon(now):
                self.inner._refresh_or_ask(token, now)
        start, end = self.inner.day_bounds(window, lead_days=0)
        end = min(end, now)
        cases = LISTERS[self.kind](self.inner, start, end, now) if start < end else []
        result.cases.extend(cases)
        result.rows_read += len(cases)
        result.detail["cases"] = len(cases)
        result.detail["calls"] = self.inner.calls
        return result


def build_aftersales(config: SourceConfigLike, deps: SourceDeps) -> Any:
    """``preset = "aftersales"`` on a file source, or ``aftersales = true`` on a shop source."""
    if config.kind == "file":
        from sources.aftersales_files import AftersalesFileSource

        return AftersalesFileSource(config, deps)
    inner: PlatformSource
    if config.kind == "taobao":
        from sources.taobao import TaobaoSource

        inner = TaobaoSource(config, deps)
    elif config.kind == "jd":
        from sources.jd import JdSource

        inner = JdSource(config, deps)
    elif config.kind == "pdd":
        from sources.pdd import PddSource

        inner = PddSource(config, deps)
    elif config.kind == "doudian":
        from sources.doudian import DoudianSource

        inner = DoudianSource(config, deps)
    else:
        raise NeedsAdmin(
            f'sources.{config.id}：售后数据只能来自 file（preset = "aftersales"）或 taobao/jd/pdd/doudian 数据源'
        )
    return AftersalesPoller(config, inner)
