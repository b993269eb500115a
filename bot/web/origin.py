"""Cross-site form posts: a /p/ form is only accepted from a page of this service (public_url).

The form links are bearer tokens: whoever holds one may fill the form. A page elsewhere that
holds a token (a forwarded link, a leaked log) could still make the person's browser post it;
browsers say where a POST comes from in ``Origin`` and ``Sec-Fetch-Site``, so a POST whose
``Origin`` is not public_url's origin, or that the browser marks ``cross-site``, is refused.
A POST without either header (an old browser, a tool) keeps working: the token still decides.

``Origin: null`` is what a browser sends for our own pages too: they are served with
``Referrer-Policy: no-referrer`` (a link is a bearer token and must not leak as a referrer), and
under that policy a same-origin POST carries ``Origin: null``. So a null origin is accepted only
where the browser also says ``Sec-Fetch-Site: same-origin``; a sandboxed iframe or a data: URL
elsewhere sends null with ``cross-site`` or nothing, and is refused.
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
    if origin.strip().lower() == "null":
        if fetch_site == "same-origin":
            return None
        return f"Origin 'null' without Sec-Fetch-Site: same-origin (is not {origin_of(public_url)})"
    if origin_of(origin) != origin_of(public_url):
        return f"Origin {origin[:100]!r} is not {origin_of(public_url)}"
    return None
