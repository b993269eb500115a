"""Cross-site form posts: a /p/ form is only accepted from a page of this service (public_url).

The form links are bearer tokens: whoever holds one may fill the form. A page elsewhere that
holds a token (a forwarded link, a leaked log) could still make the person's browser post it;
browsers say where a POST comes from in ``Origin`` and ``Sec-Fetch-Site``, so a POST whose
``Origin`` is not public_url's origin, or that the browser marks ``cross-site``, is refused.
A POST without either header (an old browser, a tool) keeps working: the token still decides.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` in the form browsers send (lower case, default port left out)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        return ""
    if port is None or port == DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def cross_site_reason(headers: Any, public_url: str) -> str | None:
    """Why this POST is cross-site (refuse it), or None. ``headers``: anything with ``get``
    (werkzeug's Headers, a dict)."""
    fetch_site = (headers.get("Sec-Fetch-Site") or "").strip().lower()
    if fetch_site == "cross-site":
        return "Sec-Fetch-Site: cross-site"
    origin = headers.get("Origin")
    if origin is None:
        return None
    if origin.strip().lower() == "null" or origin_of(origin) != origin_of(public_url):
        return f"Origin {origin[:100]!r} is not {origin_of(public_url)}"
    return None
