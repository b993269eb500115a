"""Metric connectors with one face: each yields MetricSample rows and never touches storage.

``build(config, deps)`` makes the connector for one ``[[sources]]`` entry; every connector has
``fetch(window, now) -> FetchResult`` and raises ``RetryLater`` or ``NeedsAdmin`` when it fails.
"""

from __future__ import annotations

from sources.base import (
    FetchResult,
    MemoryState,
    MetricSample,
    NeedsAdmin,
    RetryLater,
    RowError,
    Source,
    SourceConfigLike,
    SourceDeps,
    SourceError,
    Window,
)

__all__ = [
    "FetchResult",
    "MemoryState",
    "MetricSample",
    "NeedsAdmin",
    "RetryLater",
    "RowError",
    "Source",
    "SourceConfigLike",
    "SourceDeps",
    "SourceError",
    "Window",
    "build",
]


def build(config: SourceConfigLike, deps: SourceDeps | None = None) -> Source:
    """The connector for one configured source; NeedsAdmin if its configuration is unusable."""
    deps = deps or SourceDeps()
    kind = config.kind
    if config.get("preset") == "aftersales" or config.get("aftersales"):
        from sources.aftersales_api import build_aftersales

        return build_aftersales(config, deps)
    if kind == "file":
        from sources.files import FileSource

        return FileSource(config, deps)
    if kind == "http_json":
        from sources.http_json import HttpJsonSource

        return HttpJsonSource(config, deps)
    if kind == "sql":
        from sources.sql import SqlSource

        return SqlSource(config, deps)
    if kind == "taobao":
        from sources.taobao import TaobaoSource

        return TaobaoSource(config, deps)
    if kind == "jd":
        from sources.jd import JdSource

        return JdSource(config, deps)
    if kind == "pdd":
        from sources.pdd import PddSource

        return PddSource(config, deps)
    if kind == "doudian":
        from sources.doudian import DoudianSource

        return DoudianSource(config, deps)
    raise NeedsAdmin(f"sources.{config.id}.kind：未知的类型 {kind!r}")
