"""Row 5 of issue 17: the outbound URL guard (sources/netguard.py).

No test connects outside loopback: refusals are checked before any connection, rebinding and IPv6
with a patched resolver, and a loopback listener records every request it sees (it must see none).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import requests

from bot.config import BotConfig, Secret
from bot.platforms import Deps
from bot.platforms.base import DeliveryError, Outbound
from cards.model import Card, Markdown
from sources import netguard
from sources.base import NeedsAdmin, RetryLater, SourceDeps, Window
from sources.http_json import HttpJsonSource

PUBLIC = "93.184.216.34"
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
WINDOW = Window(date(2026, 11, 21), date(2026, 11, 22))


class Listener:
    """A loopback HTTP(S) server that records (path, Host header, SNI name) of every request."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.seen: list[tuple[str, str, str]] = []
        self.sni: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.seen.append((self.command, self.path, self.headers.get("Host", "")))
                if self.path.startswith("/hop"):
                    self.send_response(302)
                    self.send_header("Location", self.path.split("to=", 1)[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b'{"errcode": 0, "code": 0, "items": []}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            tls.sni_callback = lambda sock, name, ctx: self.sni.append(name or "")
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.stop()


def answers(*ips: str):
    """A resolver giving these addresses in turn (the last one from then on): DNS rebinding."""
    calls: list[str] = []

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        try:
            ip = str(ipaddress.ip_address(host))  # a literal resolves to itself, as getaddrinfo does
        except ValueError:
            ip = ips[min(len(calls), len(ips) - 1)]
            calls.append(host)
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (ip, port))]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


# ---------------------------------------------------------------- the address class


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",  # IPv4-compatible
        "::10.1.2.3",
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b:1::a00:1",  # local-use NAT64 of 10.0.0.1
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    ],
)
def test_refused_addresses(ip):
    assert netguard.refused_address(ipaddress.ip_address(ip))
    with pytest.raises(netguard.UrlRefused, match="allow_private"):
        netguard.vet("https://robot.example/hook", False, answers(ip))


@pytest.mark.parametrize("ip", [PUBLIC, "2606:4700:4700::1111", "64:ff9b::5db8:d822", "2002:5db8:d822::1"])
def test_public_addresses_pass(ip):
    assert not netguard.refused_address(ipaddress.ip_address(ip))
    assert netguard.vet("https://robot.example/hook", False, answers(ip)).address == ip


@pytest.mark.parametrize("url", ["http://[64:ff9b::7f00:1]:{port}/a", "http://[2002:7f00:1::1]:{port}/a",
                                 "http://[::127.0.0.1]:{port}/a", "http://[::ffff:127.0.0.1]:{port}/a"])  # fmt: skip
def test_ipv6_literals_embedding_loopback_are_refused_before_any_connection(listener, url):
    source = _source(url.format(port=listener.port))
    with pytest.raises(NeedsAdmin, match="allow_private"):
        source.fetch(WINDOW, NOW)
    assert listener.seen == []


# ---------------------------------------------------------------- resolve once, connect there


def _source(url: str, **values: Any) -> HttpJsonSource:
    from bot.config import SourceConfig
    from sources.base import MemoryState

    cfg = SourceConfig(
        "erp", "http_json", {"url": url, "metrics": {"pay_amount": "$.gmv"}, "retries": 0, **values}, {}
    )
    return HttpJsonSource(cfg, SourceDeps(state=MemoryState(), sleep=lambda s: None))


def test_dns_rebinding_never_reaches_loopback(listener, monkeypatch):
    """The name answers public first, loopback next: the connection goes to the public address
    that was vetted (refused by the offline test net), never to the listener."""
    resolve = answers(PUBLIC, "127.0.0.1")
    monkeypatch.setattr(socket, "getaddrinfo", resolve)  # also what urllib3 would ask on its own
    attempted: list[object] = []

    def connect(sock: socket.socket, address: object) -> None:
        attempted.append(address)
        raise ConnectionRefusedError("offline test: nothing leaves loopback")

    monkeypatch.setattr(socket.socket, "connect", connect)
    source = _source(f"http://rebind.example:{listener.port}/api")
    source.resolve = resolve
    with pytest.raises(RetryLater):
        source.fetch(WINDOW, NOW)
    assert listener.seen == []
    assert resolve.calls == ["rebind.example"]  # resolved once
    assert attempted == [(PUBLIC, listener.port)]  # and the vetted address is the one dialled


def test_the_vetted_address_is_used_and_the_host_name_kept(listener):
    session = netguard.GuardedSession(allow_private=True, resolve=answers("127.0.0.1"))
    assert session.get(f"http://erp.example:{listener.port}/x", timeout=5).status_code == 200
    assert listener.seen == [("GET", "/x", f"erp.example:{listener.port}")]


def test_every_redirect_hop_is_vetted(listener, monkeypatch):
    real = netguard.refused_address
    monkeypatch.setattr(netguard, "refused_address", lambda ip: str(ip) != "127.0.0.1" and real(ip))
    resolve = answers("127.0.0.1", "10.0.0.7")
    session = netguard.GuardedSession(allow_private=False, resolve=resolve)
    with pytest.raises(netguard.UrlRefused, match="10.0.0.7"):
        session.post(
            f"http://robot.example:{listener.port}/hop?to=http://inner.example/x", json={}, timeout=5
        )
    assert [s[1] for s in listener.seen] == ["/hop?to=http://inner.example/x"]
    assert resolve.calls == ["robot.example", "inner.example"]


def _tls_context(tmp_path, name: str) -> tuple[ssl.SSLContext, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - dt.timedelta(days=1))
        .not_valid_after(datetime.now(UTC) + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx, str(cert_path)


def test_tls_keeps_sni_and_checks_the_certificate_for_the_name(tmp_path):
    ctx, ca = _tls_context(tmp_path, "robot.example")
    server = Listener(tls=ctx)
    try:
        session = netguard.GuardedSession(allow_private=True, resolve=answers("127.0.0.1"))
        assert session.post(f"https://robot.example:{server.port}/hook", json={}, verify=ca, timeout=5).ok
        assert server.sni == ["robot.example"]
        assert server.seen == [("POST", "/hook", f"robot.example:{server.port}")]
        # the certificate is checked against the name, not the address: another name fails
        other = netguard.GuardedSession(allow_private=True, resolve=answers("127.0.0.1"))
        with pytest.raises(requests.exceptions.SSLError):
            other.post(f"https://other.example:{server.port}/hook", json={}, verify=ca, timeout=5)
    finally:
        server.stop()


# ---------------------------------------------------------------- team group-robot webhooks


CARD = Card("进度", blocks=(Markdown("本周进度"),))


def _adapter(platform: str, clock):
    deps = Deps(http=requests.Session(), clock=clock, sessions=None)  # type: ignore[arg-type]
    if platform == "feishu":
        from bot.platforms.feishu import FeishuPlatform
        from tests.fakes import feishu as ff

        return FeishuPlatform(ff.bot_config(), deps)
    if platform == "dingtalk":
        from bot.platforms.dingtalk import DingTalkPlatform

        bot = BotConfig(
            "dt", "dingtalk", {"app_key": "k", "api_base": "http://127.0.0.1:9"}, {"app_secret": Secret("s")}
        )
        return DingTalkPlatform(bot, deps)
    from bot.platforms.wecom import WeComPlatform
    from tests.hostile import bots

    return WeComPlatform(bots()[2], deps)


@pytest.mark.parametrize("platform", ["feishu", "dingtalk", "wecom"])
def test_a_team_robot_inside_the_network_is_refused_unless_allowed(listener, clock, platform):
    url = f"http://127.0.0.1:{listener.port}/robot/send?access_token=t&key=k"
    adapter = _adapter(platform, clock)
    with pytest.raises(DeliveryError) as err:
        adapter.send(Outbound("m1", "webhook", "ops", CARD, extra={"url": url}))
    assert (err.value.retry, err.value.code) == (False, "private_address")
    assert listener.seen == []
    adapter.send(Outbound("m2", "webhook", "ops", CARD, extra={"url": url, "allow_private": "true"}))
    assert [s[0] for s in listener.seen] == ["POST"]


def test_apply_and_the_relay_carry_allow_private_to_the_adapter(db, engine, services, tmp_path):
    from bot.cli.commands import main
    from bot.worker.delivery import Relay
    from storage.models import Team
    from tests.conftest import TEST_KEY

    config = tmp_path / "planloop.toml"
    url = engine.url.render_as_string(hide_password=False)
    config.write_text(f'[server]\ndatabase_url = "{url}"\nsecret_key = "{TEST_KEY}"\n')
    team_file = tmp_path / "team.toml"
    team_file.write_text(
        '[[teams]]\nid = "ops"\nname = "运营组"\n'
        'chat = { bot = "sim", chat_id = "c", webhook = "http://10.0.0.5/hook", allow_private = true }\n'
        '[[teams]]\nid = "ads"\nname = "推广组"\nchat = { bot = "sim", chat_id = "d", webhook = "https://hooks.example.com/hook" }\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "apply", str(team_file)]) == 0
    with db() as s:
        assert {t.id: t.webhook_allow_private for t in s.query(Team)} == {"ops": True, "ads": False}
    relay = Relay(services)
    outbound = {team: relay._outbound(_claimed(team)) for team in ("ops", "ads")}
    assert outbound["ops"].extra.get("allow_private") == "true"
    assert "allow_private" not in outbound["ads"].extra


def _claimed(team: str):
    from types import SimpleNamespace

    return SimpleNamespace(
        id="x",
        channel="webhook",
        target=team,
        card=CARD.to_dict(),
        reply_handle=None,
        parts_sent=0,
        webhook=None,
    )
