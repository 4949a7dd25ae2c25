"""Pacing: send ARM reads as fast as the budget allows, and never faster.

Azure Resource Manager throttles reads with a token bucket per subscription and principal
(Microsoft, "Understand how Azure Resource Manager throttles requests", 2024 model): 250 tokens
refilled at 25 per second; every answer carries ``x-ms-ratelimit-remaining-subscription-reads``,
and an empty bucket answers 429 with ``Retry-After``. Azure Resource Graph has its own quota per
user, about 15 queries per 5-second window, reported on every answer by
``x-ms-user-quota-remaining`` and ``x-ms-user-quota-resets-after`` (``hh:mm:ss``) (Microsoft,
"Guidance for throttled requests in Azure Resource Graph").

Being throttled costs the whole ``Retry-After`` for every request that hit it, and retries that
wake together are throttled together. So instead of reacting to 429s, one pacer per budget
(per subscription; one for Resource Graph) is shared by every worker and hands out a request at
a time from its own estimate of the budget:

- the estimate starts unknown: one request goes alone and its answer's header says where the
  budget stands (an answer without the header means the documented 250 / 25 model);
- every answer's header replaces the estimate when it says less than the estimate does, after
  subtracting the requests still in flight (each of which the server may not have counted yet),
  so the estimate never exceeds what the server reports;
- between answers the estimate refills at the documented rate; a 429 that says no reads are
  left (or says nothing) empties it and holds every request until ``Retry-After`` has passed,
  after which requests leave one at a time at the refill rate, never all at once. A 429 that
  still reports reads left came from the resource provider, not from the subscription's
  budget: only that request waits (the retry policy's ``Retry-After``).

Pacers are pure bookkeeping on a clock: ``take`` sleeps, everything else answers at once, so
the dispatcher in ``collector`` can ask "may this subscription send now?" without blocking a
worker (``try_take``), and hand the token it took to the worker that will send the request
(``prepaid``).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

# Microsoft, "Understand how Azure Resource Manager throttles requests" (token bucket model):
# reads per subscription and principal.
ARM_READ_CAPACITY = 250
ARM_READ_REFILL_PER_SECOND = 25.0
REMAINING_READS_HEADER = "x-ms-ratelimit-remaining-subscription-reads"
# Microsoft, "Guidance for throttled requests in Azure Resource Graph".
GRAPH_QUOTA = 15
GRAPH_WINDOW_SECONDS = 5.0
GRAPH_REMAINING_HEADER = "x-ms-user-quota-remaining"
GRAPH_RESETS_AFTER_HEADER = "x-ms-user-quota-resets-after"

_SUBSCRIPTION_PATH = re.compile(r"^/subscriptions/([^/]+)", re.IGNORECASE)
_HMS = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")

Clock = Callable[[], float]


class Pacer(Protocol):
    name: str

    def try_take(self) -> bool: ...
    def delay(self) -> float: ...
    def refund(self) -> None: ...
    def answered(self, status: int, headers: dict[str, str]) -> None: ...
    def failed(self) -> None: ...
    def stats(self) -> PacerStats: ...


@dataclass(frozen=True)
class PacerStats:
    sent: int
    throttled: int
    estimate: float | None


class BudgetTimeout(Exception):
    """The budget will not allow a request before the deadline; carries a readable reason."""


@dataclass
class _Base:
    name: str
    clock: Clock = time.monotonic
    tokens: float | None = None  # None: unknown until the first answer
    stamp: float = 0.0
    hold_until: float = 0.0
    outstanding: int = 0
    sent: int = 0
    throttled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- subclasses say how the budget grows back ----------------------------------------

    def _refilled(self, now: float) -> float | None:
        raise NotImplementedError

    def _seconds_to_one(self, now: float, tokens: float) -> float:
        raise NotImplementedError

    # --- taking --------------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        self.tokens = self._refilled(now)
        self.stamp = now

    def try_take(self) -> bool:
        """Take one request's worth of budget now, if the estimate allows it."""
        with self.lock:
            now = self.clock()
            if now < self.hold_until:
                return False
            self._advance(now)
            if self.tokens is None:
                if self.outstanding:  # the probe is still out: wait for its header
                    return False
            elif self.tokens < 1:
                return False
            else:
                self.tokens -= 1
            self.outstanding += 1
            self.sent += 1
            return True

    def delay(self) -> float:
        """Seconds until ``try_take`` may succeed (0: now); an unknown budget says 0.05 s."""
        with self.lock:
            now = self.clock()
            if now < self.hold_until:
                return self.hold_until - now
            self._advance(now)
            if self.tokens is None:
                return 0.0 if not self.outstanding else 0.05
            if self.tokens >= 1:
                return 0.0
            return max(self._seconds_to_one(now, self.tokens), 0.001)

    def refund(self) -> None:
        """A token taken for a request that was never sent."""
        with self.lock:
            self.outstanding = max(self.outstanding - 1, 0)
            self.sent -= 1
            if self.tokens is not None:
                self.tokens += 1

    def failed(self) -> None:
        """The request got no answer (connection error): it may or may not have counted."""
        with self.lock:
            self.outstanding = max(self.outstanding - 1, 0)

    def stats(self) -> PacerStats:
        with self.lock:
            return PacerStats(self.sent, self.throttled, self.tokens)

    def _throttled(self, now: float, retry_after: float | None) -> None:
        self.throttled += 1
        self.tokens = 0.0
        self.stamp = now
        if retry_after is not None and retry_after > 0:
            self.hold_until = max(self.hold_until, now + retry_after)


@dataclass
class ReadPacer(_Base):
    """ARM's read token bucket of one subscription, as the remaining-reads header reports it."""

    capacity: float = ARM_READ_CAPACITY
    refill_per_second: float = ARM_READ_REFILL_PER_SECOND

    def _refilled(self, now: float) -> float | None:
        if self.tokens is None:
            return None
        gained = max(now - self.stamp, 0.0) * self.refill_per_second
        return min(self.capacity, self.tokens + gained)

    def _seconds_to_one(self, now: float, tokens: float) -> float:
        return (1 - tokens) / self.refill_per_second

    def answered(self, status: int, headers: dict[str, str]) -> None:
        with self.lock:
            now = self.clock()
            self.outstanding = max(self.outstanding - 1, 0)
            self._advance(now)
            remaining = _int_header(headers, REMAINING_READS_HEADER)
            if status == 429 and not remaining:
                # ARM's own throttle (no reads left, or no header to say otherwise): hold
                # every request of the subscription until Retry-After has passed.
                self._throttled(now, retry_after_seconds(headers))
                return
            if status == 429:
                # Reads are left: the 429 came from the resource provider for this request,
                # not from the subscription's budget; the retry policy handles that request.
                self.throttled += 1
            if remaining is None:
                if self.tokens is None:  # no header: assume the documented bucket, full
                    self.tokens = self.capacity - self.outstanding
                return
            reported = float(remaining - self.outstanding)
            self.tokens = reported if self.tokens is None else min(self.tokens, reported)


@dataclass
class WindowPacer(_Base):
    """Resource Graph's per-user quota: ``quota`` queries per window, reset as the headers say."""

    quota: int = GRAPH_QUOTA
    window_seconds: float = GRAPH_WINDOW_SECONDS
    resets_at: float | None = None

    def _refilled(self, now: float) -> float | None:
        if self.resets_at is not None and now >= self.resets_at:
            self.resets_at = None
            return float(self.quota - self.outstanding)
        return self.tokens

    def _seconds_to_one(self, now: float, tokens: float) -> float:
        if self.resets_at is None:
            return self.window_seconds
        return self.resets_at - now

    def answered(self, status: int, headers: dict[str, str]) -> None:
        with self.lock:
            now = self.clock()
            self.outstanding = max(self.outstanding - 1, 0)
            self._advance(now)
            resets_after = duration_header(headers, GRAPH_RESETS_AFTER_HEADER)
            if resets_after is not None:
                self.resets_at = now + resets_after
            if status == 429:
                self._throttled(now, retry_after_seconds(headers) or resets_after)
                if self.resets_at is None:
                    self.resets_at = now + self.window_seconds
                return
            remaining = _int_header(headers, GRAPH_REMAINING_HEADER)
            if remaining is None:
                if self.tokens is None:
                    self.tokens = float(self.quota - self.outstanding)
                    self.resets_at = now + self.window_seconds
                return
            reported = float(remaining - self.outstanding)
            self.tokens = reported if self.tokens is None else min(self.tokens, reported)


def _int_header(headers: dict[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def retry_after_seconds(headers: dict[str, str]) -> float | None:
    """``Retry-After`` in seconds (ARM sends a number of seconds); None when absent or odd."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def duration_header(headers: dict[str, str], name: str) -> float | None:
    """An ``hh:mm:ss`` header (Resource Graph's ``x-ms-user-quota-resets-after``) in seconds."""
    value = headers.get(name)
    match = _HMS.match(value.strip()) if value else None
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


# --- one run's pacers, and the pipeline policy that uses them -------------------------------


class Pacers:
    """Every budget of one run: one ``ReadPacer`` per subscription, one ``WindowPacer`` for
    Resource Graph. Requests are routed to their budget by URL path."""

    def __init__(self, graph_path: str, *, clock: Clock = time.monotonic) -> None:
        self._graph_path = graph_path.casefold()
        self._clock = clock
        self._subscriptions: dict[str, ReadPacer] = {}
        self._lock = threading.Lock()
        self.graph = WindowPacer("Resource Graph", clock=clock)
        self._prepaid = threading.local()
        self._waited = 0.0

    def subscription(self, subscription_id: str) -> ReadPacer:
        key = subscription_id.casefold()
        with self._lock:
            pacer = self._subscriptions.get(key)
            if pacer is None:
                pacer = ReadPacer(f"subscription {subscription_id}", clock=self._clock)
                self._subscriptions[key] = pacer
            return pacer

    def for_path(self, path: str) -> Pacer | None:
        if path.casefold() == self._graph_path:
            return self.graph
        match = _SUBSCRIPTION_PATH.match(path)
        return self.subscription(match[1]) if match else None

    def all(self) -> list[Pacer]:
        with self._lock:
            return [self.graph, *self._subscriptions.values()]

    def reads_sent(self) -> int:
        with self._lock:
            pacers = list(self._subscriptions.values())
        return sum(p.stats().sent for p in pacers)

    def throttled(self) -> int:
        return sum(p.stats().throttled for p in self.all())

    # --- waiting ----------------------------------------------------------------------

    def add_wait(self, seconds: float) -> None:
        with self._lock:
            self._waited += seconds

    @property
    def waited(self) -> float:
        """Seconds spent waiting for a budget while there was work to send."""
        with self._lock:
            return self._waited

    def take(self, pacer: Pacer, deadline: float) -> None:
        """Block until ``pacer`` allows a request, or raise ``BudgetTimeout`` at the deadline."""
        if self._use_prepaid(pacer):
            return
        started = self._clock()
        while not pacer.try_take():
            wait = pacer.delay()
            if self._clock() + wait >= deadline:
                self.add_wait(self._clock() - started)
                raise BudgetTimeout(
                    f"the {pacer.name} read budget allows the next request only in {wait:.1f} s, "
                    f"after the deadline"
                )
            time.sleep(max(wait, 0.001))
        self.add_wait(self._clock() - started)

    @contextmanager
    def prepaid(self, pacer: Pacer) -> Iterator[None]:
        """Run a task whose first request to ``pacer`` spends the token already taken for it."""
        slots: dict[int, Pacer] = self._prepaid.__dict__.setdefault("slots", {})
        slots[id(pacer)] = pacer
        try:
            yield
        finally:
            if slots.pop(id(pacer), None) is not None:
                pacer.refund()

    def _use_prepaid(self, pacer: Pacer) -> bool:
        slots: dict[int, Pacer] = self._prepaid.__dict__.setdefault("slots", {})
        return slots.pop(id(pacer), None) is not None
