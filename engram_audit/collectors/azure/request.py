"""What to collect from Azure, as the CLI states it: no SDK import, so parsing flags stays cheap."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

# ``--concurrency``: requests in flight per read budget (each subscription's, and Resource
# Graph's), 1 to MAX_CONCURRENCY.
MAX_CONCURRENCY = 64
# Requests in flight in the whole run, whatever the number of subscriptions: one worker thread
# and one pooled HTTPS connection each, all to the one ARM endpoint. Measured (README, "Fleet
# speed"): 1,000 servers over 10 subscriptions are CPU-bound on a 2-core machine at 64 (the
# threads share one GIL); 32 saved ~5% of CPU, 24 made the run slower. 64 keeps headroom for
# ARM latencies above the emulator's 50 ms (32 x 20 reads/s would be just under what 10
# subscriptions' budgets allow at the floor) and equals MAX_CONCURRENCY, so one subscription
# can use the whole --concurrency range; more would only add threads and connections.
MAX_IN_FLIGHT = 64
# The clouds ``--cloud`` accepts; ``clients.CLOUDS`` maps each to the SDK's endpoints.
CLOUD_NAMES = ("AzureChinaCloud", "AzureCloud", "AzureUSGovernment")


class Discovery(Enum):
    """How the servers of a request are found."""

    SERVER = "server"  # one GET through ARM: --resource-group RG --server NAME
    GROUP = "group"  # one ARM list: --resource-group RG (one subscription)
    GRAPH = "graph"  # one paged Resource Graph query: tag, several subscriptions or servers, MG


@dataclass(frozen=True)
class Shard:
    """``--shard I/N``: the I-th of N parts (1-based) of the run's servers."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def bounds(self, total: int) -> tuple[int, int]:
        """The slice of ``total`` servers (ordered by subscription, then id) this shard takes:
        contiguous, so a subscription's servers (and its read budget) mostly stay in one shard."""
        return (self.index - 1) * total // self.count, self.index * total // self.count


def estate_digest(server_ids: Iterable[str]) -> str:
    """What a sharded run split, as shards can compare it: sha256 (hex) of the servers' resource
    ids, casefolded (ARM ids change case between APIs), without repeats, sorted and joined with
    newlines. Shards of one run that saw the same servers have the same digest."""
    ids = sorted({server_id.casefold() for server_id in server_ids})
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AzureRequest:
    # One subscription (``--subscription ID`` given once); several go to ``subscriptions``.
    subscription_id: str | None = None
    resource_group: str | None = None
    server_name: str | None = None
    tag: tuple[str, str] | None = None
    arm_endpoint: str | None = None
    cloud: str = "AzureCloud"
    token_env: str | None = None
    timeout_seconds: float = 300.0
    # Requests in flight per read budget (subscription, Resource Graph); MAX_IN_FLIGHT in all.
    concurrency: int = 8
    # ``--allow-empty``: a scope in which no flexible server is found is accepted (its rules are
    # SKIP) instead of being recorded as a collection issue (exit 3).
    allow_empty: bool = False
    # ``--subscription`` repeated: every subscription to search (Resource Graph discovery).
    subscriptions: tuple[str, ...] = ()
    # ``--management-group ID``: every subscription under it (Resource Graph discovery).
    management_group: str | None = None
    # Several servers by name (the inventory's ``servers`` list): Resource Graph discovery.
    server_names: tuple[str, ...] = ()
    shard: Shard | None = None

    @property
    def subscription_ids(self) -> tuple[str, ...]:
        """Every subscription named, in the order given, without repeats (in any case)."""
        named = ((self.subscription_id,) if self.subscription_id else ()) + self.subscriptions
        seen: dict[str, str] = {}
        for subscription in named:
            seen.setdefault(subscription.casefold(), subscription)
        return tuple(seen.values())

    @property
    def names(self) -> tuple[str, ...]:
        """Every server name asked for (``server_name`` and ``server_names``)."""
        named = ((self.server_name,) if self.server_name else ()) + self.server_names
        return tuple(dict.fromkeys(named))

    @property
    def discovery(self) -> Discovery:
        single = len(self.subscription_ids) == 1 and self.management_group is None
        if single and self.resource_group and len(self.names) == 1 and self.tag is None:
            return Discovery.SERVER
        if single and self.resource_group and not self.names:
            return Discovery.GROUP
        return Discovery.GRAPH


def in_flight_limit(request: AzureRequest) -> int:
    """Requests in flight in the whole run: ``concurrency`` per budget the run can draw on
    (each subscription named, plus Resource Graph), never above ``MAX_IN_FLIGHT``. A management
    group's subscriptions are known only after discovery: it gets ``MAX_IN_FLIGHT``."""
    if request.management_group is not None:
        return MAX_IN_FLIGHT
    budgets = len(request.subscription_ids) + (1 if request.discovery is Discovery.GRAPH else 0)
    return max(1, min(MAX_IN_FLIGHT, request.concurrency * max(budgets, 1)))


def scope_text(request: AzureRequest) -> str:
    """Where a request looks, in words: subscriptions, management group, resource group."""
    subscriptions = request.subscription_ids
    if request.management_group:
        where = f"management group {request.management_group}"
        if subscriptions:
            where += f" (subscriptions {', '.join(subscriptions)})"
    elif len(subscriptions) == 1:
        where = f"subscription {subscriptions[0]}"
    else:
        where = f"subscriptions {', '.join(subscriptions)}"
    if request.resource_group:
        where = f"resource group {request.resource_group} of {where}"
    return where


def no_server_found(request: AzureRequest) -> str:
    """What an empty discovery means, in the request's own terms (for issues and notes)."""
    where = scope_text(request)
    if request.tag is not None:
        key, value = request.tag
        return f"no flexible server matched tag {key}={value} in {where}"
    if request.names and request.discovery is Discovery.GRAPH:
        return f"no flexible server named {', '.join(request.names)} in {where}"
    return f"no flexible server in {where}"
