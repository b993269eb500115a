"""The stream supervisor's own rules, with scripted clients and leases (no platform involved)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from bot.config import BotConfig, Secret
from bot.platforms.stream import StreamAuthError, StreamError
from bot.services import build_services
from bot.worker import streams


class ScriptedClient:
    """Each run() takes the next step: "ok" (connect, serve until stop), "fail", "auth", "ends"."""

    def __init__(self, steps: list[str]):
        self.steps = list(steps)
        self.runs = 0
        self.bot_id, self.platform = "dt", "dingtalk"

    def run(self, handle, stop, on_connected):  # noqa: ANN001
        self.runs += 1
        step = self.steps.pop(0) if self.steps else "ok"
        if step == "fail":
            raise StreamError("gateway said no", code="HTTP 502")
        if step == "auth":
            raise StreamAuthError("credentials refused: check app_secret", code="HTTP 401")
        if step == "ends":
            return
        on_connected()
        stop.wait()


class Lease:
    def __init__(self, held: bool = True):
        self.held = held
        self.released = False

    is_leader = True

    def try_acquire(self) -> bool:
        return self.held

    def check(self) -> bool:
        return self.held

    def release(self) -> None:
        self.released = True


@pytest.fixture
def make(settings, engine, clock):
    made = []

    def build(steps: list[str], lease: Lease) -> tuple[streams.Supervisor, ScriptedClient, threading.Event]:
        bot = BotConfig(
            "dt", "dingtalk", {"connection": "stream", "app_key": "k"}, {"app_secret": Secret("s")}
        )
        services = build_services(replace(settings, bots=(bot,), simulator=False), clock=clock, engine=engine)
        client = ScriptedClient(steps)
        supervisor = streams.Supervisor(
            services,
            lease_poll=0.02,
            base=0.01,
            cap=0.04,
            auth_tries=3,
            build=lambda *_: client,
            lease=lambda *_: lease,
        )
        stop = threading.Event()
        supervisor.start(stop)
        made.append((supervisor, stop))
        return supervisor, client, stop

    yield build
    for supervisor, stop in made:
        stop.set()
        supervisor.join(5)


def until(predicate, seconds: float = 5.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize(
    "steps, reconnects, error",
    [
        (["fail", "fail", "ok"], 2, "gateway said no [HTTP 502]"),
        (["ends", "ok"], 1, "the connection ended without an error"),
        (["auth", "fail", "auth", "ok"], 3, "credentials refused: check app_secret [HTTP 401]"),
    ],
    ids=["failures", "a client that returns", "auth errors not in a row"],
)
def test_failures_are_retried_until_connected(make, steps, reconnects, error):
    supervisor, client, _ = make(steps, Lease())
    assert until(lambda: supervisor.states()[0].connected)
    [state] = supervisor.states()
    assert (state.reconnects, state.last_error, client.runs) == (reconnects, error, len(steps))


def test_refused_credentials_three_times_in_a_row_stop_the_bot(make):
    supervisor, client, _ = make(["auth", "auth", "auth", "ok"], lease := Lease())
    supervisor.join(5)
    assert not supervisor.threads[0].is_alive() and client.runs == 3
    assert lease.released and not supervisor.states()[0].connected


def test_without_the_lease_nothing_connects_and_losing_it_closes_the_connection(make):
    lease = Lease(held=False)
    supervisor, client, _ = make([], lease)
    time.sleep(0.2)
    assert client.runs == 0 and supervisor.states()[0].holder is False
    lease.held = True
    assert until(lambda: supervisor.states()[0].connected)
    lease.held = False  # another worker's now (our database link broke)
    assert until(lambda: not supervisor.states()[0].connected and not supervisor.states()[0].holder)
    assert client.runs == 1


def test_stop_closes_the_connection_and_releases_the_lease(make):
    supervisor, client, stop = make([], lease := Lease())
    assert until(lambda: supervisor.states()[0].connected)
    stop.set()
    supervisor.join(5)
    assert not supervisor.threads[0].is_alive() and lease.released
    assert not supervisor.states()[0].connected
