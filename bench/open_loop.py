"""An open-loop load generator: latency at a fixed request rate (what wrk2's -R does; wrk has
no rate option). Used by bench/webhook_wrk.py ``--rate``.

Request i is due at ``start + i / rate`` whatever happened to the ones before it, and its
latency is counted from that due time, not from when a connection was free to send it: a
server that stalls for a second is charged for every request that should have gone out in
that second (no "coordinated omission", the flaw of a closed loop like wrk's). Connections
are kept alive and reused; a new one is opened whenever none is idle (up to
``max_connections``; past that, requests wait — and that wait counts). A request whose
reused connection was closed by the server before it answered (gunicorn recycling a worker)
is sent once more on a new connection, like an HTTP client would; such retries are counted.

The requests come pre-built, one per event id, in webhook_wrk.py's file format
(``<length>\\n<raw HTTP/1.1 request>`` repeated).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path


def read_requests(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out, pos = [], 0
    while pos < len(data):
        nl = data.index(b"\n", pos)
        length = int(data[pos:nl])
        out.append(data[nl + 1 : nl + 1 + length])
        pos = nl + 1 + length
    return out


@dataclass
class Result:
    rate: float
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    retries: int = 0
    connections: int = 0
    late_ms: float = 0.0  # the generator's own worst lag behind the schedule (its honesty check)

    def percentile(self, p: float) -> float:
        values = sorted(self.latencies_ms)
        if not values:
            return float("nan")
        k = min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))
        return values[k]

    def summary(self) -> dict[str, float | int]:
        ok = sum(n for s, n in self.statuses.items() if 200 <= s < 300)
        return {
            "target_rps": self.rate,
            "achieved_rps": round(len(self.latencies_ms) / self.seconds, 1),
            "requests": len(self.latencies_ms),
            "non_2xx": len(self.latencies_ms) - ok,
            "errors": self.errors,
            "retries": self.retries,
            "connections": self.connections,
            "p50": round(self.percentile(50), 2),
            "p90": round(self.percentile(90), 2),
            "p99": round(self.percentile(99), 2),
            "max": round(max(self.latencies_ms, default=float("nan")), 2),
            "generator_late_ms": round(self.late_ms, 2),
        }


class _Closed(Exception):
    """The server closed a kept-alive connection before answering."""


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, bool]:
    """Send one request, read its answer: (status, keep the connection)."""
    writer.write(raw)
    await writer.drain()
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise _Closed from exc
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection", "").lower() != "close"


async def _run(
    host: str, port: int, requests: list[bytes], rate: float, seconds: float, max_connections: int
) -> Result:
    result = Result(rate, seconds)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    slots = asyncio.Semaphore(max_connections)
    loop = asyncio.get_running_loop()
    total = int(rate * seconds)
    if total > len(requests):
        raise SystemExit(f"need {total} distinct requests, have {len(requests)}")

    async def one(raw: bytes, due: float) -> None:
        async with slots:
            for attempt in (1, 2):
                reused = bool(idle) and attempt == 1  # a retry takes a new connection
                if reused:
                    reader, writer = idle.pop()
                else:
                    reader, writer = await asyncio.open_connection(host, port)
                    result.connections += 1
                try:
                    status, keep = await _exchange(reader, writer, raw)
                except (_Closed, ConnectionError):
                    writer.close()
                    if reused and attempt == 1:
                        result.retries += 1
                        continue
                    result.errors += 1
                    return
                result.latencies_ms.append((loop.time() - due) * 1000)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if keep:
                    idle.append((reader, writer))
                else:
                    writer.close()
                return

    start = loop.time() + 0.05
    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        result.late_ms = max(result.late_ms, (loop.time() - due) * 1000)
        tasks.append(asyncio.create_task(one(requests[i], due)))
    await asyncio.gather(*tasks)
    for _reader, writer in idle:
        writer.close()
    return result


def run(
    port: int,
    requests: list[bytes],
    rate: float,
    seconds: float,
    *,
    host: str = "127.0.0.1",
    max_connections: int = 64,
) -> Result:
    started = time.monotonic()
    result = asyncio.run(_run(host, port, requests, rate, seconds, max_connections))
    result.seconds = max(seconds, time.monotonic() - started - 0.05)
    return result
