"""Start-up time of the ``salesbridge`` command: ``--help``, ``--version`` and simple commands.

Each command runs as a new process (``.venv/bin/salesbridge``, not the bin/ wrapper, so the
venv check is not counted) against a fresh data dir; prints one JSON line with the median
and the best of ``--runs`` wall-clock times per command, in seconds, and the load average
(start-up time on a busy 2-core machine is mostly waiting for a core).

    .venv/bin/python bench/cli_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "--help": ["--help"],
    "--version": ["--version"],
    "user list": ["user", "list"],
    "mapping list": ["mapping", "list"],
    "sync status": ["sync", "status"],
}


def _time(program: Path, arguments: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([str(program), *arguments], env=env, capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    program = Path(sys.executable).parent / "salesbridge"
    with tempfile.TemporaryDirectory() as data_dir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SALESBRIDGE_")}
        env["SALESBRIDGE_DATA_DIR"] = data_dir
        subprocess.run([str(program), "init"], env=env, capture_output=True, check=True)
        figures: dict[str, object] = {"load_average_1min": os.getloadavg()[0]}
        for label, arguments in COMMANDS.items():
            times = [_time(program, arguments, env) for _ in range(runs)]
            figures[label] = {
                "median_s": round(statistics.median(times), 3),
                "best_s": round(min(times), 3),
            }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
