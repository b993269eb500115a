"""Where a Feishu 帮助 webhook spends its time in-process (issue 18 §4): the WSGI app called
directly (no HTTP server, no gunicorn), one request at a time, on a migrated database with
examples/team.toml applied — the same request bench/webhook_wrk.py's ``feishu-text`` sends.

    python bench/webhook_profile.py [--db sqlite|postgresql] [--requests 2000] [--profile cprofile|pyinstrument|none]

Prints the mean time per request, then the profile (pyinstrument when asked for and
installed — `pip install pyinstrument`, a bench-only tool — else cProfile sorted by
cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import webhook_platforms  # noqa: E402
from bench.webhook_wrk import KEY, PG_ADMIN  # noqa: E402

URL = "/webhooks/feishu/feishu-main"


def build_app(db: str, tmp: Path) -> tuple[object, Callable[[], None]]:
    from sqlalchemy import text

    from bot.config import load as load_settings
    from bot.services import build_services
    from bot.web.app import create_app
    from handlers.setup import apply, parse
    from storage.db import make_engine, upgrade

    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    if db == "postgresql":
        name = f"planloop_profile_{uuid.uuid4().hex[:8]}"
        admin = make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"

        def cleanup() -> None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    else:
        url = f"sqlite:///{tmp / 'profile.db'}"
    config = tmp / "planloop.toml"
    config.write_text(
        f'[server]\ndatabase_url = "{url}"\nsecret_key = "{KEY}"\npublic_url = "http://127.0.0.1"\n'
        + webhook_platforms.BOTS_TOML,
        encoding="utf-8",
    )
    settings = load_settings(config)
    engine = make_engine(url)
    upgrade(engine)
    services = build_services(settings, engine=engine)
    spec = parse(tomllib.loads((ROOT / "examples" / "team.toml").read_text("utf-8")))
    with services.sessions() as session, session.begin():
        apply(session, spec, now=services.clock())
    return create_app(settings, services), lambda: (engine.dispose(), cleanup())


def environ(i: int, run: str) -> dict[str, object]:
    _method, headers, body = webhook_platforms.feishu_text(i, run)
    env: dict[str, object] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": URL,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": headers.get("Content-Type", ""),
    }
    for k, v in headers.items():
        if k.lower() != "content-type":
            env["HTTP_" + k.upper().replace("-", "_")] = v
    return env


def run(app: object, envs: list[dict[str, object]]) -> None:
    def start_response(status: str, _headers: list[tuple[str, str]]) -> None:
        if not status.startswith("200"):
            raise SystemExit(f"answered {status}")

    for env in envs:
        b"".join(app(env, start_response))  # type: ignore[operator]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", choices=["cprofile", "pyinstrument", "none"], default="cprofile")
    parser.add_argument("--top", type=int, default=45)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="planloop-profile-") as tmpdir:
        app, cleanup = build_app(args.db, Path(tmpdir))
        try:
            run(app, [environ(i, "warm") for i in range(200)])
            envs = [environ(i, uuid.uuid4().hex[:8]) for i in range(args.requests)]
            if args.profile == "pyinstrument":
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.0002)
                profiler.start()
                started = time.perf_counter()
                run(app, envs)
                took = time.perf_counter() - started
                profiler.stop()
                print(profiler.output_text(unicode=True, color=False, show_all=False))
            elif args.profile == "cprofile":
                prof = cProfile.Profile()
                started = time.perf_counter()
                prof.runcall(run, app, envs)
                took = time.perf_counter() - started
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(args.top)
                print(out.getvalue())
            else:
                started, cpu = time.perf_counter(), time.process_time()
                run(app, envs)
                took, cpu = time.perf_counter() - started, time.process_time() - cpu
                # CPU time of this process: steadier than the wall clock on a shared machine
                print(f"{args.db}: {cpu / args.requests * 1000:.3f} ms CPU per request in this process")
            print(
                f"{args.db}: {args.requests} requests, {took / args.requests * 1000:.3f} ms each ({args.profile})"
            )
        finally:
            cleanup()


if __name__ == "__main__":
    main()
