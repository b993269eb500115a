"""The outbound URL guard: URLs a user configures never reach this machine or the private network.

Used for every outbound URL a team or an admin types into a config entry (an ``http_json``
source, a team chat's group-robot ``webhook``); a bot's own ``api_base`` is the admin's endpoint
and is not guarded. ``allow_private = true`` on that one entry is the only way past it.

How (docs/security.md):
- the host name is resolved once; every address it resolves to must be public, including the
  IPv4 address inside IPv4-mapped (``::ffff:a.b.c.d``), IPv4-compatible (``::a.b.c.d``), NAT64
  (``64:ff9b::/96``, ``64:ff9b:1::/48``), 6to4 (``2002::/16``) and Teredo (``2001::/32``) forms;
- the connection goes to the vetted address itself (no second lookup a rebinding DNS server
  could answer differently), while TLS SNI, certificate checks and the Host header keep the name;
- every redirect hop is vetted the same way; environment proxies are not used.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.timeout import _DEFAULT_TIMEOUT

Resolver = Callable[..., list[Any]]
IP = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


class UrlRefused(Exception):
    """The URL may not be fetched (scheme, or an address inside the network): an admin must act."""


class UnresolvedHost(Exception):
    """The host name did not resolve (perhaps for now): try again later."""


def embedded_ipv4(ip: IP) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries in the transition forms a network may route."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    out: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        out.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        out.append(ip.sixtofour)
    if ip.teredo is not None:
        out.extend(ip.teredo)
    if any(ip in net for net in _NAT64) or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out


def refused_address(ip: IP) -> bool:
    """Loopback, private, link-local, shared (CGNAT), multicast, reserved, unspecified, metadata…:
    anything not globally routable, itself or through an embedded IPv4 address."""
    embedded = embedded_ipv4(ip)
    translated = bool(embedded) and getattr(ip, "teredo", None) is None
    # A translation form (mapped, compatible, NAT64, 6to4) goes where its IPv4 address goes; the
    # container itself may sit in a reserved block (64:ff9b::/96 is inside ::/8).
    for candidate in embedded if translated else [ip, *embedded]:
        if (
            not candidate.is_global
            or candidate.is_multicast
            or candidate.is_reserved
            or candidate.is_unspecified
            or candidate.is_loopback
            or candidate.is_link_local
        ):
            return True
    return False


def literal_refusal(url: str) -> str:
    """Why ``url`` is refused without resolving anything ("" if not, or if only DNS can tell):
    the check ``planloop apply`` makes, so a robot URL at 127.0.0.1 or 10.x is named at once."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        return f"只支持 http(s) 地址：{parts.scheme or '?'}://{host}"
    if host == "localhost" or host.endswith(".localhost"):
        ip: IP = ipaddress.ip_address("127.0.0.1")
    else:
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return ""
    if refused_address(ip):
        return f"拒绝访问内网或本机地址 {ip}（{host}）；确需访问请在该条配置里写 allow_private = true"
    return ""


@dataclass(frozen=True)
class Vetted:
    host: str
    port: int
    address: str  # the IP the connection goes to


def _system_resolve(host: str, port: int, **kwargs: Any) -> list[Any]:
    return socket.getaddrinfo(host, port, **kwargs)  # looked up at call time (tests patch it)


def vet(url: str, allow_private: bool, resolve: Resolver = _system_resolve) -> Vetted:
    """Resolve ``url``'s host once; UrlRefused unless every address is public (or ``allow_private``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused(f"只支持 http(s) 地址：{parts.scheme or '?'}://{parts.hostname or ''}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UrlRefused(f"端口无效：{parts.netloc}") from None
    host = parts.hostname
    try:
        infos = resolve(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError, ValueError) as exc:
        raise UnresolvedHost(f"无法解析主机名 {host}：{exc}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise UnresolvedHost(f"无法解析主机名 {host}")
    if not allow_private:
        for ip in addresses:
            if refused_address(ip):
                raise UrlRefused(
                    f"拒绝访问内网或本机地址 {ip}（{host}）；确需访问请在该条配置里写 allow_private = true"
                )
    return Vetted(host, port, str(addresses[0]))


# ---------------------------------------------------------------- connecting to the vetted address


def _pinned_connection(base: type[HTTPConnection], address: str) -> type[HTTPConnection]:
    class Pinned(base):  # type: ignore[valid-type, misc]
        """Connects to ``address``; ``host`` (SNI, certificate, Host header) stays the name."""

        def _new_conn(self) -> socket.socket:
            # A socket straight to the address: no getaddrinfo at all, not even for a literal.
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                if self.timeout is not _DEFAULT_TIMEOUT:
                    sock.settimeout(self.timeout)
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect((address, self.port))
                return sock
            except TimeoutError as exc:
                sock.close()
                raise ConnectTimeoutError(self, f"connection to {self.host} timed out") from exc
            except OSError as exc:
                sock.close()
                raise NewConnectionError(self, f"failed to connect to {self.host}: {exc}") from exc

    return Pinned


class _PinnedAdapter(HTTPAdapter):
    def __init__(self, address: str):
        self.address = address
        super().__init__(max_retries=0)

    def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> Any:
        pool = super().get_connection_with_tls_context(*args, **kwargs)
        base = HTTPSConnection if pool.scheme == "https" else HTTPConnection
        pool.ConnectionCls = _pinned_connection(base, self.address)  # type: ignore[attr-defined]
        return pool


class GuardedSession(requests.Session):
    """A requests session whose every request (and redirect hop) goes through ``vet`` and then to
    the vetted address. Raises UrlRefused / UnresolvedHost before any connection is made."""

    def __init__(self, allow_private: bool = False, resolve: Resolver = _system_resolve):
        super().__init__()
        self.allow_private = allow_private
        self.resolve = resolve
        self.trust_env = False  # an HTTP(S)_PROXY would do its own lookup of the name
        self.max_redirects = 3

    def get_adapter(self, url: str) -> HTTPAdapter:
        target = vet(url, self.allow_private, self.resolve)
        return _PinnedAdapter(target.address)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = super().send(request, **kwargs)
        if not kwargs.get("stream") and isinstance(response.connection, HTTPAdapter):
            response.connection.close()  # its pinned pool served this one request; the body is read
        return response
