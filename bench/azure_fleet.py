"""Fleet speed of the Azure collector: wall time and ARM requests per server, by fleet size.

The HTTPS ARM emulator runs in its own process (so it does not share the collector's GIL),
adds a fixed latency to every request (50 ms by default, a fair figure for ARM reads), and
serves each fleet as one resource group of its own subscription, so metric alerts and list
pages scale with the fleet. Each fleet is collected through the real SDK at --concurrency and
again at concurrency 1; the ratio is the pool's speed-up. Run from the repo root:

    .venv/bin/python bench/azure_fleet.py                     # 1, 10, 100, 200, 500 servers
    .venv/bin/python bench/azure_fleet.py --sizes 1,10 --latency 0.05 --concurrency 8,32

Targets (issue 4): requests per server constant and at most 12; 200 servers within 15 s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from multiprocessing.queues import Queue
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from engram_audit.collectors.azure.collector import AzureRequest, collect_azure  # noqa: E402
from tests.support.arm_emulator import STATS_PATH, ArmEmulator  # noqa: E402
from tests.support.arm_world import fleet_world, load_world  # noqa: E402

TOKEN = "bench-token-" + "x" * 32
TOKEN_VARIABLE = "ENGRAM_AUDIT_BENCH_TOKEN"


def _subscription(size: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"engram-audit-bench-{size}"))


def _group(size: int) -> str:
    return f"fleet-{size}"


def _serve(sizes: list[int], latency: float, ready: Queue[tuple[str, str]]) -> None:
    template = load_world("prod-unseen-compliant")
    arm = ArmEmulator(token=TOKEN, latency=latency, page_size=100)
    for size in sizes:
        arm.add_world(fleet_world(template, _subscription(size), _group(size), size))
    arm.start()
    ready.put((arm.url, arm.ca_pem))
    threading.Event().wait()


@dataclass(frozen=True)
class Run:
    servers: int
    concurrency: int
    seconds: float
    requests: int
    issues: int

    @property
    def per_server(self) -> float:
        return self.requests / self.servers


def _requests_served(url: str, ca: str) -> int:
    count: int = requests.get(f"{url}{STATS_PATH}", verify=ca, timeout=10).json()["requests"]
    return count


def _collect(url: str, ca: str, size: int, concurrency: int, timeout: float) -> Run:
    before = _requests_served(url, ca)
    request = AzureRequest(
        _subscription(size),
        resource_group=_group(size),
        arm_endpoint=url,
        token_env=TOKEN_VARIABLE,
        timeout_seconds=timeout,
        concurrency=concurrency,
    )
    started = time.perf_counter()
    collection = collect_azure(request, show_progress=False)
    seconds = time.perf_counter() - started
    found = len(collection.section.servers)
    if found != size:
        raise SystemExit(f"fleet {size}: collected {found} servers: {collection.issues[:3]}")
    return Run(
        size, concurrency, seconds, _requests_served(url, ca) - before, len(collection.issues)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100,200,500", help="fleet sizes, comma-separated")
    parser.add_argument("--concurrency", default="8,32", help="pool sizes to compare with 1")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added per request")
    parser.add_argument(
        "--serial-max",
        type=int,
        default=500,
        help="skip the concurrency-1 run above this fleet size (it takes ~0.5 s per server)",
    )
    parser.add_argument("--json", action="store_true", help="print the runs as JSON too")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    pools = [int(c) for c in args.concurrency.split(",")]

    context = multiprocessing.get_context("fork")
    ready: Queue[tuple[str, str]] = context.Queue()
    server = context.Process(target=_serve, args=(sizes, args.latency, ready), daemon=True)
    server.start()
    url, ca = ready.get(timeout=120)
    os.environ["REQUESTS_CA_BUNDLE"] = ca
    os.environ[TOKEN_VARIABLE] = TOKEN

    print(f"ARM emulator: {args.latency * 1000:.0f} ms per request, {os.cpu_count()} CPU(s)")
    header = f"{'servers':>7} {'conc.':>5} {'wall s':>8} {'requests':>8} {'req/server':>10} {'vs conc. 1':>10}"
    print(header)
    print("-" * len(header))
    runs: list[Run] = []
    try:
        for size in sizes:
            serial = _collect(url, ca, size, 1, timeout=3600) if size <= args.serial_max else None
            if serial is not None:
                runs.append(serial)
                print(
                    f"{size:>7} {1:>5} {serial.seconds:>8.2f} {serial.requests:>8} "
                    f"{serial.per_server:>10.2f} {'1.0x':>10}"
                )
            for pool in pools:
                run = _collect(url, ca, size, pool, timeout=3600)
                runs.append(run)
                ratio = f"{serial.seconds / run.seconds:.1f}x" if serial else "-"
                print(
                    f"{size:>7} {pool:>5} {run.seconds:>8.2f} {run.requests:>8} "
                    f"{run.per_server:>10.2f} {ratio:>10}"
                )
    finally:
        server.terminate()
    if args.json:
        print(json.dumps([run.__dict__ | {"per_server": run.per_server} for run in runs], indent=2))


if __name__ == "__main__":
    main()
