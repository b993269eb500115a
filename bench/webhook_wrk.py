"""Webhook throughput and latency of `planloop serve` (gunicorn) under wrk, per platform path,
on SQLite and on PostgreSQL. Run by hand; the numbers go in docs/ops/performance.md.

    apt-get install wrk
    python bench/webhook_wrk.py                      # both databases, every path, 15 s each
    python bench/webhook_wrk.py --db sqlite --duration 5 --paths sim-help
    python bench/webhook_wrk.py --paths feishu-text --workers 2 --reference --rate 200   # issue 18 §4

What it does, per database: creates an empty one (a temp SQLite file, or a fresh database on
the PostgreSQL at $PLANLOOP_TEST_PG), runs `planloop db upgrade` and `planloop apply
examples/team.toml` as an operator would, starts `planloop serve` on a free loopback port,
and points wrk at each path with pre-built requests: every request carries a new event id
(so each one is a real first delivery: dedupe insert, handler, answer, commit — not the
cheap duplicate path) and, for a signed platform, a valid signature made with the
adapter's own ``sign_…`` twin. A platform whose adapter is not in this checkout is
skipped with a note. Traffic goes only to 127.0.0.1, and every run stops by itself.

Each row also gives the server's CPU milliseconds per request (its processes' user + system
time over the run, from /proc), which a busy shared machine inflates much less than it
deflates req/s. ``--reference`` runs bench/webhook_reference.py (a bare Flask app: verify,
decrypt, insert the event id) under gunicorn with the same worker count, on the same kind of
database, alternating with planloop's ``feishu-text`` ``--rounds`` times, and prints the
ratio of each round. ``--rate R`` then drives each server open-loop at R req/s
(bench/open_loop.py) for the latency at a fixed rate, which wrk cannot do.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = "vExb5JuV_czKxZS0p-hDWNIgfPEeCPHkEzIkVmJknLA="  # bench only
PG_ADMIN = os.environ.get("PLANLOOP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PEOPLE = ["lilei", "hanmeimei", "zhangwei", "liuyang", "chenjing", "wangfang"]

# wrk: each thread takes every n-th pre-built request, cycling if it runs out (then the
# repeats are duplicates, reported as "repeats" so a too-small pool is visible).
LUA = r"""
local reqs, idx, count = {}, 0, 0
local counts = {}
function setup(thread)
  thread:set("tid", #counts)
  thread:set("nthreads", tonumber(os.getenv("WRK_THREADS")))
  table.insert(counts, thread)
end
function init(args)
  local f = assert(io.open(args[1], "rb"))
  local data = f:read("*a")
  f:close()
  local pos, k = 1, 0
  while pos <= #data do
    local nl = data:find("\n", pos, true)
    local len = tonumber(data:sub(pos, nl - 1))
    if k % nthreads == tid then
      reqs[#reqs + 1] = data:sub(nl + 1, nl + len)
    end
    k = k + 1
    pos = nl + 1 + len
  end
end
function request()
  idx = idx + 1
  if idx > #reqs then idx = 1 end
  count = count + 1
  return reqs[idx]
end
function done(summary, latency, requests)
  local out = string.format(
    '{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
    '"p50": %d, "p90": %d, "p99": %d, "p999": %d, "max": %d, "mean": %.1f}',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean)
  io.write("WRKJSON " .. out .. "\n")
end
"""


@dataclass
class Path_:
    name: str
    url: str
    build: Callable[[int, str], tuple]  # (i, run id) -> method, headers, body[, query string]
    note: str


def sim_say(text: str) -> Callable[[int, str], tuple[str, dict[str, str], bytes]]:
    def build(i: int, run: str) -> tuple[str, dict[str, str], bytes]:
        body = {"as": PEOPLE[i % len(PEOPLE)], "chat": "dm", "text": text, "id": f"{run}-{i}"}
        return "POST", {"Content-Type": "application/json"}, json.dumps(body, ensure_ascii=False).encode()

    return build


def available_paths() -> tuple[list[Path_], list[str]]:
    """The simulator paths always; a platform's path when its adapter and signing twin exist."""
    paths = [
        Path_("sim-help", "/sim/api/say", sim_say("帮助"), "simulator, 帮助 (read-only handler)"),
        Path_(
            "sim-plan",
            "/sim/api/say",
            sim_say("计划\n优化详情页首屏 支付转化率 +2pp\n差评回访 投诉率 -10%"),
            "simulator, a two-line text plan (writes a plan version)",
        ),
    ]
    skipped: list[str] = []
    try:
        from bench import webhook_platforms  # the signed platform builders (added when adapters land)

        more, missing = webhook_platforms.paths()
        paths.extend(Path_(**p) for p in more)
        skipped.extend(missing)
    except ImportError:
        skipped.append("feishu/dingtalk/wecom: no adapters in this checkout")
    return paths, skipped


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def database(kind: str, tmp: Path, name: str = "bench") -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'{name}.db'}"
        return
    from sqlalchemy import text

    from storage.db import make_engine

    admin = make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"planloop_{name}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def planloop(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "bot.cli.commands", *args],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )


def raw_request(method: str, path: str, port: int, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def write_requests(path: Path_, port: int, count: int, out: Path) -> None:
    run = uuid.uuid4().hex[:8]
    with out.open("wb") as f:
        for i in range(count):
            built = path.build(i, run)
            method, headers, body = built[:3]
            query = built[3] if len(built) > 3 else ""  # type: ignore[misc]
            raw = raw_request(method, path.url + query, port, headers, body)
            f.write(f"{len(raw)}\n".encode() + raw)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live children (gunicorn's workers), from /proc:
    the server's cost per request, which a shared machine's load does not inflate the way it
    inflates wall-clock rates."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return float("nan")
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        if p == pid:  # workers gunicorn recycled (max_requests) and reaped: cutime, cstime
            total += (int(fields[13]) + int(fields[14])) / tick
    return total


def wrk(port: int, script: Path, requests: Path, seconds: int, threads: int, connections: int) -> dict:
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
            "--",
            str(requests),
        ],
        env={**os.environ, "WRK_THREADS": str(threads)},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("WRKJSON "))
    return json.loads(line.removeprefix("WRKJSON "))


def wait_ready(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("serve did not become ready")


@dataclass
class Server:
    name: str  # "planloop" | "reference"
    port: int
    pid: int


def measure(
    path: Path_,
    server: Server,
    tmp: Path,
    args: argparse.Namespace,
    kind: str,
    warm: bool,
    paced: bool = True,
) -> dict:
    """One wrk run (closed loop: the throughput) on fresh event ids, with the server's CPU seconds
    per request; with --rate, then the open loop (latency at that fixed rate)."""
    script = tmp / "bench.lua"
    script.write_text(LUA, encoding="utf-8")
    reqs = tmp / f"{path.name}.reqs"
    if warm:
        write_requests(path, server.port, args.pool, reqs)
        wrk(server.port, script, reqs, 3, args.threads, args.connections)  # warm-up
    write_requests(path, server.port, args.pool, reqs)  # fresh event ids for the measured run
    cpu = tree_cpu_seconds(server.pid)
    r = wrk(server.port, script, reqs, args.duration, args.threads, args.connections)
    cpu = tree_cpu_seconds(server.pid) - cpu
    name = path.name if server.name == "planloop" else f"{path.name} (reference)"
    r.update(db=kind, path=name, note=path.note, server=server.name)
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["cpu_ms"] = cpu / r["requests"] * 1000 if r["requests"] else float("nan")
    r["repeats"] = max(0, r["requests"] - args.pool)
    print(row(r), flush=True)
    if args.rate and paced:
        from bench import open_loop

        write_requests(path, server.port, int(args.rate * args.rate_seconds), reqs)
        paced = open_loop.run(
            server.port, open_loop.read_requests(reqs), args.rate, args.rate_seconds
        ).summary()
        r["paced"] = paced
        print(f"#   {kind} {name} at {args.rate:g} req/s open loop: {json.dumps(paced)}", flush=True)
    return r


@contextmanager
def planloop_server(kind: str, url: str, tmp: Path, args: argparse.Namespace, bots: bool) -> Iterator[Server]:
    """`planloop serve` on a fresh, migrated database with examples/team.toml applied."""
    config = tmp / "planloop.toml"
    config.write_text(
        '[server]\ndatabase_url = "env:BENCH_DB"\nsecret_key = "env:BENCH_KEY"\n'
        'public_url = "http://127.0.0.1"\n'
        + (f"threads = {args.server_threads}\n" if args.server_threads else "")
        + "[simulator]\nenabled = true\n"
        + (webhook_bots_toml() if bots else ""),
        encoding="utf-8",
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS_")},
        "PLANLOOP_CONFIG": str(config),
        "BENCH_DB": url,
        "BENCH_KEY": KEY,
        "PYTHONPATH": str(ROOT),
        "PLANLOOP_LOG_LEVEL": "warning",
    }
    planloop(env, "db", "upgrade")
    planloop(env, "apply", str(ROOT / "examples" / "team.toml"))
    port = free_port()
    serve_args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    if args.workers:
        serve_args += ["--workers", str(args.workers)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli.commands", *serve_args],
        env=env,
        stdout=subprocess.DEVNULL,  # access log lines: wrk would be measuring the terminal
        stderr=(tmp / "serve.log").open("w"),
    )
    try:
        wait_ready(port, proc)
        yield Server("planloop", port, proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        failures = summarize_errors(tmp / "serve.log")
        for reason, n in failures.most_common(5):
            print(f"#   {kind}: {n} × {reason}")


@contextmanager
def reference_server(url: str, tmp: Path, args: argparse.Namespace) -> Iterator[Server]:
    """bench/webhook_reference.py under gunicorn with planloop's worker class, workers and threads."""
    from bot.ops.serve import default_workers

    env = {**os.environ, "REF_DB": url, "REF_ENCRYPT_KEY": REFERENCE_ENCRYPT_KEY, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-c", "from bench.webhook_reference import setup; setup()"],
        env=env,
        check=True,
        timeout=60,
    )
    port = free_port()
    worker = ["-k", "gthread", "--threads", "4"] if args.reference_worker == "gthread" else ["-k", "sync"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            *worker,
            "-w",
            str(args.workers or default_workers()),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "bench.webhook_reference:app",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "reference.log").open("w"),
    )
    try:
        wait_up(port, proc)
        yield Server("reference", port, proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def wait_up(port: int, proc: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the reference exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the reference did not start")


def bench_db(kind: str, paths: list[Path_], args: argparse.Namespace) -> list[dict]:
    """Every path against planloop; with --reference, feishu-text against planloop and the
    reference in alternation (--rounds times each, both servers up all along), so that a
    shared machine's load falls on both sides of the ratio alike."""
    results: list[dict] = []
    bots = any(p.name.split("-")[0] in PLATFORM_NAMES for p in paths)
    feishu = next((p for p in paths if p.name == "feishu-text"), None)
    if args.reference and feishu is None:
        raise SystemExit("--reference compares feishu-text: include it in --paths")
    with tempfile.TemporaryDirectory(prefix="planloop-bench-") as tmpdir, ExitStack() as stack:
        tmp = Path(tmpdir)
        url = stack.enter_context(database(kind, tmp))
        ours = stack.enter_context(planloop_server(kind, url, tmp, args, bots))
        for path in paths:
            if path is not feishu or not args.reference:
                results.append(measure(path, ours, tmp, args, kind, warm=True))
        if args.reference and feishu is not None:
            ref_url = stack.enter_context(database(kind, tmp, "reference"))
            ref = stack.enter_context(reference_server(ref_url, tmp, args))
            pairs = []
            for i in range(args.rounds):
                last = i == args.rounds - 1  # the open-loop run once per server, after the last round
                a = measure(feishu, ours, tmp, args, kind, warm=i == 0, paced=last)
                b = measure(feishu, ref, tmp, args, kind, warm=i == 0, paced=last)
                pairs.append((a, b))
                results += [a, b]
            ratios = sorted(a["rps"] / b["rps"] for a, b in pairs)
            cpu = sorted(b["cpu_ms"] / a["cpu_ms"] for a, b in pairs)
            print(
                f"#   {kind}: feishu-text / reference, req/s ratio per round {', '.join(f'{x:.2f}' for x in ratios)}"
                f" (median {statistics.median(ratios):.2f}); CPU-per-request ratio (reference / planloop)"
                f" median {statistics.median(cpu):.2f}",
                flush=True,
            )
    return results


def summarize_errors(log: Path) -> Counter[str]:
    """Why requests failed, from serve's JSON error lines: the last line of each traceback."""
    reasons: Counter[str] = Counter()
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("level") in ("error", "critical"):
            exc = [x for x in record.get("exc", "").strip().splitlines() if not x.startswith("(Background")]
            last = next((x for x in reversed(exc) if not x.startswith((" ", "[SQL", "[parameters"))), "")
            reasons[f"{record['message']}: {last}"[:200]] += 1
    return reasons


PLATFORM_NAMES = ("feishu", "dingtalk", "wecom")
REFERENCE_ENCRYPT_KEY = "fake-encrypt-key"  # the Feishu fake's key, which webhook_platforms signs with


def webhook_bots_toml() -> str:
    from bench import webhook_platforms

    return webhook_platforms.BOTS_TOML


def row(r: dict) -> str:
    errors = r["connect"] + r["read"] + r["write"] + r["timeout"]
    return (
        f"| {r['db']} | {r['path']} | {r['rps']:.0f} | {r['p50'] / 1000:.1f} | {r['p90'] / 1000:.1f} | "
        f"{r['p99'] / 1000:.1f} | {r['max'] / 1000:.0f} | {r['status']} | {errors} | {r['repeats']} | "
        f"{r['cpu_ms']:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--paths", help="comma-separated path names (default: all available)")
    parser.add_argument("--duration", type=int, default=15, help="seconds per path")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: planloop's default)")
    parser.add_argument("--server-threads", type=int, help="planloop's threads per worker (default: its own)")
    parser.add_argument("--pool", type=int, default=40000, help="distinct requests per path")
    parser.add_argument(
        "--reference",
        action="store_true",
        help="also run bench/webhook_reference.py (bare Flask, same gunicorn workers) on feishu-text; print the ratio",
    )
    parser.add_argument(
        "--rate", type=float, help="after wrk, drive each path open-loop at this req/s (p99 at a rate)"
    )
    parser.add_argument(
        "--reference-worker",
        choices=["gthread", "sync"],
        default="gthread",
        help="the reference's gunicorn worker class: gthread with 4 threads (planloop's default before "
        "0.2) or gunicorn's default, sync (planloop's default now)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="with --reference: alternating runs of each")
    parser.add_argument("--rate-seconds", type=float, default=30, help="seconds of the open-loop run")
    parser.add_argument("--json", type=Path, help="write every result here as JSON")
    args = parser.parse_args()

    paths, skipped = available_paths()
    if args.paths:
        wanted = args.paths.split(",")
        paths = [p for p in paths if p.name in wanted]
    from bot.ops.serve import THREADS, default_workers

    print(
        f"# machine: {os.cpu_count()} cores; wrk -t{args.threads} -c{args.connections} -d{args.duration}s; "
        f"planloop: {args.workers or default_workers()} workers x {args.server_threads or THREADS} threads "
        f"({'gthread' if (args.server_threads or THREADS) > 1 else 'sync'}); same machine as wrk"
    )
    for note in skipped:
        print(f"# skipped: {note}")
    print(
        "| db | path | req/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | socket errors | repeats "
        "| server CPU ms/req |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results = []
    for kind in kinds:
        results += bench_db(kind, paths, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
