"""CPU a gunicorn worker of `planloop serve` spends booting (issue 18 §4): what
``PlanloopServer.load`` costs in a fresh process, with and without the modules the master
imports before the fork (``bot.ops.serve.APP_MODULES``). A worker boots again every
``max_requests`` (2,000 + jitter) requests, so this divided by ~2,100 is its share of
the CPU per request.

    python bench/worker_boot.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CODE = """
import sys, time
sys.path.insert(0, {root!r})
from bot.config import Secret, Settings
from bot.ops.serve import PlanloopServer, _import_app_modules, gunicorn_options
settings = Settings(database_url={url!r}, secret_keys=(Secret({key!r}),), simulator=True)
if {inherited}:
    _import_app_modules()  # what the master did before the fork
start = time.process_time()
PlanloopServer(settings, gunicorn_options(settings, "127.0.0.1", 0, 1)).load()
print(time.process_time() - start)
"""


def boot_seconds(inherited: bool, tmp: str) -> float:
    from bench.webhook_wrk import KEY

    code = CODE.format(root=str(ROOT), url=f"sqlite:///{tmp}/boot.db", key=KEY, inherited=inherited)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        for inherited in (False, True):
            runs = [boot_seconds(inherited, tmp) for _ in range(args.runs)]
            label = "modules inherited from the master" if inherited else "worker imports everything"
            median = statistics.median(runs)
            print(
                f"{label}: {median:.3f} s CPU per boot (runs {', '.join(f'{r:.3f}' for r in runs)}); "
                f"{median / 2100 * 1000:.2f} ms per request at one boot per 2,100 requests"
            )


if __name__ == "__main__":
    main()
