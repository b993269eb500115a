"""A team's own HTTP endpoint (kind = "http_json"): GET JSON, map it to samples with small paths.

Safety: only http(s); every address the host name resolves to must be public unless the admin
sets ``allow_private = true`` (no loopback, private, link-local or metadata addresses, nor an
IPv6 form embedding one), resolved once and connected to that address, checked again on every
redirect (sources/netguard.py); a response size cap; timeouts; retries with backoff on 5xx/429 and
network errors, then "retry later".
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from sources import jsonlimits, netguard
from sources.base import (
    FetchResult,
    NeedsAdmin,
    RetryLater,
    RowError,
    SourceConfigLike,
    SourceDeps,
    Window,
)
from sources.presets import METRIC_KEY
from sources.values import ValueParseError, parse_date

MAX_BYTES = 5_000_000
MAX_REDIRECTS = 3
Resolver = Callable[..., list[Any]]

# ---------------------------------------------------------------- a JSONPath-like subset

_TOKEN = re.compile(
    r"\.([A-Za-z_\u4e00-\u9fff][\w\u4e00-\u9fff-]*)|\[(\d+|\*)\]|\[['\"]([^'\"]+)['\"]\]|\.\*"
)


def parse_path(path: str) -> list[str | int]:
    """``$.data.items[*].gmv`` → ["data", "items", "*", "gmv"]; also ``['a b']``, ``[0]``.
    A bare ``gmv`` or ``data.gmv`` means ``$.gmv`` / ``$.data.gmv``."""
    text = path.strip()
    if not text.startswith("$"):
        text = "$." + text
    steps: list[str | int] = []
    pos = 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"无法解析路径 {path!r}（第 {pos + 1} 个字符）")
        if m.group(1) is not None:
            steps.append(m.group(1))
        elif m.group(2) is not None:
            steps.append("*" if m.group(2) == "*" else int(m.group(2)))
        elif m.group(3) is not None:
            steps.append(m.group(3))
        else:
            steps.append("*")
        pos = m.end()
    return steps


def select(data: Any, path: str | list[str | int]) -> list[Any]:
    """Every value at ``path`` (a wildcard may give many; a missing key gives none)."""
    steps = parse_path(path) if isinstance(path, str) else path
    current = [data]
    for step in steps:
        nxt: list[Any] = []
        for node in current:
            if step == "*":
                if isinstance(node, list):
                    nxt.extend(node)
                elif isinstance(node, dict):
                    nxt.extend(node.values())
            elif isinstance(step, int):
                if isinstance(node, list) and -len(node) <= step < len(node):
                    nxt.append(node[step])
            elif isinstance(node, dict) and step in node:
                nxt.append(node[step])
        current = nxt
    return current


def first(data: Any, path: str) -> Any:
    found = select(data, path)
    return found[0] if found else None


# ---------------------------------------------------------------- SSRF guard


def check_url(url: str, allow_private: bool, resolve: Resolver = socket.getaddrinfo) -> None:
    """Refuse URLs that could reach this machine or the team's private network (sources/netguard.py)."""
    try:
        netguard.vet(url, allow_private, resolve)
    except netguard.UrlRefused as exc:
        raise NeedsAdmin(str(exc)) from None
    except netguard.UnresolvedHost as exc:
        raise RetryLater(str(exc)) from None


# ---------------------------------------------------------------- the source


class HttpJsonSource:
    kind = "http_json"

    def __init__(self, config: SourceConfigLike, deps: SourceDeps, resolve: Resolver = socket.getaddrinfo):
        self.id = config.id
        self.deps = deps
        self.resolve = resolve
        self.url = config.secret("url_secret") or str(config.get("url", "") or "")
        if not self.url:
            raise NeedsAdmin(f"sources.{config.id}.url：需要接口地址")
        self.headers = {str(k): str(v) for k, v in (config.get("headers") or {}).items()}
        token = config.secret("token")
        if token:
            self.headers.setdefault("Authorization", f"Bearer {token}")
        self.params = {str(k): str(v) for k, v in (config.get("params") or {}).items()}
        self.timeout = float(config.get("timeout", 10))
        self.retries = int(config.get("retries", 3))
        self.max_bytes = int(config.get("max_bytes", MAX_BYTES))
        self.allow_private = bool(config.get("allow_private", False))
        self.records = str(config.get("records", "$[*]"))
        self.date_path = str(config.get("date", "date"))
        self.scope = str(config.get("scope", "shop"))
        self.scope_path = str(config.get("scope_field", "") or "")
        self.metric_path = str(config.get("metric_field", "") or "")
        self.value_path = str(config.get("value_field", "value"))
        self.metrics = {str(k): str(v) for k, v in (config.get("metrics") or {}).items()}
        bad = [k for k in self.metrics if not METRIC_KEY.fullmatch(k)]
        if bad:
            raise NeedsAdmin(f"sources.{config.id}.metrics：指标键无效：{', '.join(bad)}")
        if not self.metrics and not self.metric_path:
            raise NeedsAdmin(f'sources.{config.id}：需要 metrics = {{ 指标键 = "$.字段" }} 或 metric_field')
        try:
            for p in [
                self.records,
                self.date_path,
                self.value_path,
                self.scope_path,
                self.metric_path,
                *self.metrics.values(),
            ]:
                if p:
                    parse_path(p)
        except ValueError as exc:
            raise NeedsAdmin(f"sources.{config.id}：{exc}") from None

    def _url(self, window: Window) -> tuple[str, dict[str, str]]:
        fill = {"start": window.start.isoformat(), "end": window.end.isoformat()}
        try:
            url = self.url.format(**fill)
            params = {k: v.format(**fill) for k, v in self.params.items()}
        except (KeyError, IndexError, ValueError) as exc:
            raise NeedsAdmin(f"sources.{self.id}.url：占位符只可用 {{start}} 和 {{end}}（{exc}）") from None
        return url, params

    def _get(self, url: str, params: dict[str, str]) -> bytes:
        attempt = 0
        while True:
            try:
                return self._get_once(url, params)
            except RetryLater as exc:
                if attempt >= self.retries:
                    raise
                wait = exc.retry_after if exc.retry_after is not None else float(2**attempt)
                self.deps.sleep(min(wait, 60.0))
                attempt += 1

    def _get_once(self, url: str, params: dict[str, str]) -> bytes:
        # Resolved once per hop, connected to the vetted address (no DNS rebinding), each hop vetted.
        http = netguard.GuardedSession(self.allow_private, self.resolve)
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = http.get(
                    url,
                    params=params,
                    headers=self.headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                    stream=True,
                )
            except netguard.UrlRefused as exc:
                raise NeedsAdmin(str(exc)) from None
            except netguard.UnresolvedHost as exc:
                raise RetryLater(str(exc)) from None
            except requests.Timeout:
                raise RetryLater(f"请求超时（{self.timeout:g} 秒）") from None
            except requests.ConnectionError as exc:
                raise RetryLater(f"连接失败：{type(exc).__name__}") from None
            with response:
                if response.is_redirect:
                    location = response.headers.get("Location", "")
                    url, params = urljoin(url, location), {}
                    continue
                if response.status_code == 429 or response.status_code >= 500:
                    ra = response.headers.get("Retry-After", "")
                    raise RetryLater(
                        "接口暂时不可用",
                        code=f"HTTP {response.status_code}",
                        retry_after=float(ra) if ra.isdigit() else None,
                    )
                if response.status_code >= 400:
                    raise NeedsAdmin(
                        "接口拒绝了请求",
                        code=f"HTTP {response.status_code}",
                        platform_message=response.reason or "",
                    )
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise NeedsAdmin(f"响应过大（{declared} 字节，上限 {self.max_bytes}）")
                body = bytearray()
                for chunk in response.iter_content(64 * 1024):
                    body.extend(chunk)
                    if len(body) > self.max_bytes:
                        raise NeedsAdmin(f"响应过大（超过上限 {self.max_bytes} 字节）")
                return bytes(body)
        raise NeedsAdmin(f"重定向超过 {MAX_REDIRECTS} 次")

    def fetch(self, window: Window, now: datetime) -> FetchResult:
        url, params = self._url(window)
        raw = self._get(url, params)
        try:
            data = jsonlimits.loads(raw, max_bytes=self.max_bytes)
        except jsonlimits.JsonLimitError as exc:
            raise NeedsAdmin(f"接口返回的 JSON 超出上限：{exc}") from None
        except ValueError:
            raise NeedsAdmin("接口返回的不是 JSON") from None
        records = select(data, self.records)
        result = FetchResult(detail={"records": len(records)})
        label = urlsplit(url).netloc + urlsplit(url).path
        for n, record in enumerate(records, start=1):
            result.rows_read += 1
            errors: list[RowError] = []
            day = self._date(record, n, label, errors)
            scope = self.scope
            if self.scope_path:
                s = first(record, self.scope_path)
                if s not in (None, ""):
                    scope = str(s)
            values: list[tuple[str, Any]] = []
            if self.metric_path:
                metric = first(record, self.metric_path)
                if not isinstance(metric, str) or not METRIC_KEY.fullmatch(metric):
                    errors.append(RowError(label, n, self.metric_path, f"指标键无效：{metric!r}"))
                else:
                    values.append((metric, (self.value_path, first(record, self.value_path))))
            else:
                values = [(m, (p, first(record, p))) for m, p in self.metrics.items()]
            cells = [(path, metric, raw_value) for metric, (path, raw_value) in values]
            result.add_row((label, n), scope, day, cells, errors, self.id, now)
        return result

    def _date(self, record: Any, n: int, label: str, errors: list[RowError]) -> date | None:
        raw = first(record, self.date_path)
        try:
            if isinstance(raw, str) and len(raw) > 10 and re.match(r"\d{4}-\d{2}-\d{2}[T ]", raw):
                return parse_date(raw[:10])
            return parse_date(raw)
        except ValueParseError as exc:
            errors.append(RowError(label, n, self.date_path, str(exc)))
            return None
