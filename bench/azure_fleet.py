"""Fleet speed of the Azure collector under ARM's real read throttling.

The HTTPS ARM emulator runs in its own process (so it does not share the collector's GIL),
adds a fixed latency to every request (50 ms by default) and models ARM's read throttling as
Microsoft documents it: a token bucket per subscription and principal, 250 reads refilled at 25
per second, 429 + ``Retry-After`` when empty, ``x-ms-ratelimit-remaining-subscription-reads``
on every answer; Resource Graph with its quota of 15 queries per 5 seconds. Every list fits in
one page. Each scenario is collected in a fresh interpreter (so its peak RSS is its own),
through the real SDKs, finding the servers by tag through Resource Graph and reading the parts
of the issue's policy: configurations, firewall rules, backups and administrators per server;
bodies and metric alerts from Resource Graph, plus the permissions read per subscription that
confirms the alerts (``--policy prod`` reads what ``policies/prod.yaml``'s rules read).

Printed per run: wall time, ARM reads per server, Resource Graph queries, 429 answers, the
floor for the reads actually sent (the slowest subscription's (reads - 250) / 25 s: no client
can be faster), the ratio to it and the seconds above it, the bound at this concurrency (the
floor, or what the requests in flight allow at the emulator's latency: --concurrency per
subscription, at most MAX_IN_FLIGHT in all, when that is higher), the seconds spent waiting for
a budget (summed over the dispatcher and the workers), the collector's peak RSS, and the CPU
seconds the collector and the emulator spent during the run (the collector's Python threads
share one GIL: near the wall time, it is CPU-bound). Run from the repo root:

    .venv/bin/python bench/azure_fleet.py                      # 200 x 1 and 1,000 x 10
    .venv/bin/python bench/azure_fleet.py --scenario 1000x10 --repeat 5   # median of 5
    .venv/bin/python bench/azure_fleet.py --scenario 50x2 --latency 0.05 --concurrency 16
    .venv/bin/python bench/azure_fleet.py --extra-part azure.databases   # one more part

The default policy reads the issue's four per-server parts plus the metric alerts (from Resource
Graph), which cost one permissions read per subscription: hence 4.005 reads per server at 200
servers in one subscription, where the issue's four parts alone would be 4.

Targets (issue "Fleet scale within ARM's real throttling"): 200 servers in one subscription
in <= 25 s with <= 4 ARM reads per server and no 429; 1,000 servers over 10 subscriptions in
<= 40 s, and every run at most 3 s above the floor for the reads it sent; peak RSS <= 250 MB at
1,000 servers.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from engram_audit.collectors.azure.request import MAX_IN_FLIGHT  # noqa: E402
from tests.support.arm_emulator import STATS_PATH, ArmEmulator  # noqa: E402
from tests.support.arm_world import fleet_world, load_world  # noqa: E402

TOKEN = "bench-token-" + "x" * 32
TOKEN_VARIABLE = "ENGRAM_AUDIT_BENCH_TOKEN"
TAG = ("fleet", "bench")
CAPACITY, REFILL = 250, 25.0
PAGE_SIZE = 1000


@dataclass(frozen=True)
class Scenario:
    servers: int
    subscriptions: int

    @property
    def label(self) -> str:
        return f"{self.servers}x{self.subscriptions}"

    def subscription_ids(self) -> list[str]:
        return [
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"engram-audit-bench-{self.label}-{index}"))
            for index in range(self.subscriptions)
        ]

    def sizes(self) -> list[int]:
        """Servers per subscription, spread as evenly as possible."""
        base, extra = divmod(self.servers, self.subscriptions)
        return [base + (1 if index < extra else 0) for index in range(self.subscriptions)]


def _parse_scenario(text: str) -> Scenario:
    servers, _, subscriptions = text.partition("x")
    return Scenario(int(servers), int(subscriptions or 1))


def _serve(scenarios: list[Scenario], latency: float, ready: Queue[tuple[str, str]]) -> None:
    template = load_world("prod-unseen-compliant")
    template["servers"][0]["server"]["tags"] = dict([TAG])
    arm = ArmEmulator(
        token=TOKEN,
        latency=latency,
        page_size=PAGE_SIZE,
        read_capacity=CAPACITY,
        read_refill_per_second=REFILL,
    )
    for scenario in scenarios:
        for subscription, size in zip(scenario.subscription_ids(), scenario.sizes(), strict=True):
            arm.add_world(fleet_world(template, subscription, f"fleet-{scenario.label}", size))
    arm.start()
    ready.put((arm.url, arm.ca_pem))
    threading.Event().wait()


@dataclass(frozen=True)
class Run:
    scenario: str
    servers: int
    subscriptions: int
    concurrency: int
    seconds: float
    reads: int
    graph_queries: int
    throttled: int
    floor: float
    bound: float
    waited: float
    peak_rss_mb: float
    issues: int
    # CPU seconds during the run: the collector's process, and the emulator's.
    client_cpu: float
    emulator_cpu: float

    @property
    def per_server(self) -> float:
        return self.reads / self.servers

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor if self.floor else float("nan")


def _stats(url: str, ca: str) -> dict[str, int]:
    answer: dict[str, int] = requests.get(f"{url}{STATS_PATH}", verify=ca, timeout=10).json()
    return answer


def _child(
    url: str,
    ca: str,
    subscriptions: list[str],
    parts: list[str],
    concurrency: int,
    answer: Queue[dict[str, Any]],
) -> None:
    """One collection in a fresh interpreter: its timings and its own peak RSS."""
    os.environ["REQUESTS_CA_BUNDLE"] = ca
    os.environ[TOKEN_VARIABLE] = TOKEN
    from engram_audit.collectors.azure.collector import AzureRequest, collect_azure

    request = AzureRequest(
        subscriptions=tuple(subscriptions),
        tag=TAG,
        arm_endpoint=url,
        token_env=TOKEN_VARIABLE,
        timeout_seconds=600,
        concurrency=concurrency,
    )
    started, cpu_before = time.perf_counter(), time.process_time()
    collection = collect_azure(request, show_progress=False, parts=frozenset(parts))
    seconds, cpu_after = time.perf_counter() - started, time.process_time()
    per_subscription: dict[str, int] = {}
    for server in collection.section.servers:
        key = server.subscription_id.casefold()
        per_subscription[key] = per_subscription.get(key, 0) + 1
    answer.put(
        {
            "seconds": seconds,
            "servers": len(collection.section.servers),
            "issues": [issue.reason for issue in collection.issues[:3]],
            "issue_count": len(collection.issues),
            "reads": collection.reads_sent,
            "waited": collection.budget_wait_seconds,
            "per_subscription": per_subscription,
            # Linux reports ru_maxrss in KiB.
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "cpu": cpu_after - cpu_before,
        }
    )


def _collect(
    url: str,
    ca: str,
    scenario: Scenario,
    parts: list[str],
    concurrency: int,
    latency: float,
    emulator_pid: int,
) -> Run:
    before = _stats(url, ca)
    emulator_before = _cpu_seconds(emulator_pid)
    context = multiprocessing.get_context("spawn")
    answer: Queue[dict[str, Any]] = context.Queue()
    child = context.Process(
        target=_child,
        args=(url, ca, scenario.subscription_ids(), parts, concurrency, answer),
    )
    child.start()
    result = answer.get(timeout=900)
    child.join()
    after = _stats(url, ca)
    emulator_cpu = _cpu_seconds(emulator_pid) - emulator_before
    if result["servers"] != scenario.servers or result["issue_count"]:
        raise SystemExit(f"{scenario.label}: {result['servers']} servers, {result['issues']}")
    reads = after["reads"] - before["reads"]
    # Reads per subscription: the parts of its servers (each list is one page here).
    per_server_reads = reads / scenario.servers
    floor = max(
        max(count * per_server_reads - CAPACITY, 0) / REFILL
        for count in result["per_subscription"].values()
    )
    return Run(
        scenario=scenario.label,
        servers=scenario.servers,
        subscriptions=scenario.subscriptions,
        concurrency=concurrency,
        seconds=result["seconds"],
        reads=reads,
        graph_queries=after["graph_queries"] - before["graph_queries"],
        throttled=(after["throttled"] - before["throttled"])
        + (after["graph_throttled"] - before["graph_throttled"]),
        floor=floor,
        # With --concurrency requests in flight per subscription (and MAX_IN_FLIGHT in all) at
        # the emulator's latency, no run can be faster.
        bound=max(
            floor,
            max(result["per_subscription"].values()) * per_server_reads * latency / concurrency,
            reads * latency / min(MAX_IN_FLIGHT, concurrency * (scenario.subscriptions + 1)),
        ),
        waited=result["waited"],
        peak_rss_mb=result["peak_rss_mb"],
        issues=result["issue_count"],
        client_cpu=result["cpu"],
        emulator_cpu=emulator_cpu,
    )


# The policy the issue's targets are stated for: rules reading each server's configurations,
# firewall rules, backups and administrators (bodies and metric alerts from Resource Graph).
ISSUE_PARTS = (
    "azure.server",
    "azure.parameters",
    "azure.firewall_rules",
    "azure.backups",
    "azure.administrators",
    "azure.metric_alerts",
)


def _policy_parts(policy: str, extra: list[str]) -> list[str]:
    if policy == "issue":
        parts = set(ISSUE_PARTS)
    else:
        from engram_audit.policy.loader import load_policy
        from engram_audit.policy.planning import plan_for

        parts = set(plan_for(load_policy(REPO / "policies" / f"{policy}.yaml")).parts or ())
    return sorted(part for part in parts | set(extra) if part.startswith("azure."))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux: /proc/PID/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenario",
        action="append",
        help="SERVERSxSUBSCRIPTIONS, repeatable [default: 200x1 and 1000x10]",
    )
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added per request")
    parser.add_argument("--concurrency", type=int, default=8, help="--concurrency of the runs")
    parser.add_argument(
        "--policy",
        default="issue",
        help="the parts to read: 'issue' (configurations, firewall rules, backups, "
        "administrators, as the issue's targets say) or a policy under policies/ (e.g. prod)",
    )
    parser.add_argument(
        "--extra-part", action="append", default=[], help="another part to read (azure.*)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="collect each scenario N times (a shared machine is noisy: report the median)",
    )
    parser.add_argument("--json", action="store_true", help="print the runs as JSON too")
    args = parser.parse_args()
    scenarios = [_parse_scenario(text) for text in args.scenario or ["200x1", "1000x10"]]
    parts = _policy_parts(args.policy, args.extra_part)

    context = multiprocessing.get_context("fork")
    ready: Queue[tuple[str, str]] = context.Queue()
    server = context.Process(target=_serve, args=(scenarios, args.latency, ready), daemon=True)
    server.start()
    url, ca = ready.get(timeout=300)

    print(
        f"ARM emulator: {args.latency * 1000:.0f} ms per request, read bucket {CAPACITY} "
        f"refilled at {REFILL:g}/s per subscription, Resource Graph 15 queries / 5 s; "
        f"{os.cpu_count()} CPU(s); --concurrency {args.concurrency}"
    )
    print(f"parts read: {', '.join(parts)}")
    header = (
        f"{'servers':>7} {'subs':>4} {'wall s':>7} {'reads':>6} {'reads/srv':>9} {'graph q':>7} "
        f"{'429s':>4} {'floor s':>7} {'x floor':>7} {'+ s':>5} {'bound s':>7} {'wait s':>6} "
        f"{'RSS MB':>6} {'cpu s':>5} {'emu cpu':>7}"
    )
    print(header)
    print("-" * len(header))
    runs: list[Run] = []
    try:
        repeat = max(args.repeat, 1)
        for number, scenario in enumerate(s for s in scenarios for _ in range(repeat)):
            if number % repeat:
                # The same subscriptions again: let their read buckets fill up first.
                time.sleep(CAPACITY / REFILL + 1)
            run = _collect(
                url, ca, scenario, parts, args.concurrency, args.latency, server.pid or 0
            )
            runs.append(run)
            print(
                f"{run.servers:>7} {run.subscriptions:>4} {run.seconds:>7.2f} "
                f"{run.reads:>6} {run.per_server:>9.3f} {run.graph_queries:>7} {run.throttled:>4} "
                f"{run.floor:>7.2f} {run.ratio:>7.2f} {run.seconds - run.floor:>5.2f} "
                f"{run.bound:>7.2f} {run.waited:>6.1f} {run.peak_rss_mb:>6.0f} "
                f"{run.client_cpu:>5.1f} {run.emulator_cpu:>7.1f}"
            )
    finally:
        server.terminate()
    if args.json:
        print(json.dumps([asdict(run) | {"per_server": run.per_server} for run in runs], indent=2))


if __name__ == "__main__":
    main()
