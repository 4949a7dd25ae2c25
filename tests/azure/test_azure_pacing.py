"""The pacers on a fake clock: probe first, never above what the header says, hold on a 429."""

from __future__ import annotations

import pytest

from engram_audit.collectors.azure.pacing import (
    GRAPH_REMAINING_HEADER,
    GRAPH_RESETS_AFTER_HEADER,
    REMAINING_READS_HEADER,
    Pacers,
    ReadPacer,
    WindowPacer,
    duration_header,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _taken(pacer: ReadPacer | WindowPacer) -> int:
    count = 0
    while pacer.try_take():
        count += 1
    return count


def test_an_unknown_budget_sends_one_probe_and_waits_for_its_header() -> None:
    clock = Clock()
    pacer = ReadPacer("s", clock=clock)

    assert pacer.try_take()
    assert not pacer.try_take()  # the probe is out
    pacer.answered(200, {REMAINING_READS_HEADER: "5"})

    assert _taken(pacer) == 5


def test_the_estimate_never_exceeds_the_header_less_what_is_in_flight() -> None:
    clock = Clock()
    pacer = ReadPacer("s", clock=clock)
    pacer.try_take()
    pacer.answered(200, {REMAINING_READS_HEADER: "10"})
    assert _taken(pacer) == 10
    # Another client spent the budget: the next answer says 2 left, with 9 still in flight.
    pacer.answered(200, {REMAINING_READS_HEADER: "2"})

    assert not pacer.try_take()
    assert pacer.delay() == pytest.approx((1 - (2 - 9)) / 25)


def test_the_budget_refills_at_the_documented_rate_up_to_the_capacity() -> None:
    clock = Clock()
    pacer = ReadPacer("s", clock=clock, capacity=250)
    pacer.try_take()
    pacer.answered(200, {REMAINING_READS_HEADER: "0"})
    assert not pacer.try_take()
    assert pacer.delay() == pytest.approx(1 / 25)

    clock.now += 1.0
    assert _taken(pacer) == 25
    clock.now += 3600
    assert _taken(pacer) == 250


def test_an_arm_429_holds_the_subscription_until_retry_after() -> None:
    clock = Clock()
    pacer = ReadPacer("s", clock=clock)
    pacer.try_take()
    pacer.answered(429, {REMAINING_READS_HEADER: "0", "retry-after": "3"})

    assert not pacer.try_take()
    assert pacer.delay() == pytest.approx(3)
    clock.now += 2.9
    assert not pacer.try_take()
    clock.now += 0.1
    # ARM refilled the bucket meanwhile (25 a second), not to its capacity.
    assert _taken(pacer) == 75
    assert pacer.stats().throttled == 1


def test_a_provider_429_with_reads_left_does_not_hold_the_subscription() -> None:
    clock = Clock()
    pacer = ReadPacer("s", clock=clock)
    pacer.try_take()
    pacer.answered(429, {REMAINING_READS_HEADER: "120", "retry-after": "3600"})

    assert pacer.try_take()


def test_answers_without_the_header_mean_the_documented_bucket() -> None:
    pacer = ReadPacer("s", clock=Clock())
    pacer.try_take()
    pacer.answered(200, {})

    assert _taken(pacer) == 250


def test_a_refund_gives_back_the_token_of_a_request_never_sent() -> None:
    pacer = ReadPacer("s", clock=Clock())
    pacer.try_take()
    pacer.answered(200, {REMAINING_READS_HEADER: "1"})
    assert pacer.try_take()
    pacer.refund()
    assert pacer.try_take()


def test_resource_graph_quota_follows_its_headers_and_window() -> None:
    clock = Clock()
    pacer = WindowPacer("graph", clock=clock)
    pacer.try_take()
    pacer.answered(200, {GRAPH_REMAINING_HEADER: "2", GRAPH_RESETS_AFTER_HEADER: "00:00:03"})

    assert _taken(pacer) == 2
    assert pacer.delay() == pytest.approx(3)
    clock.now += 3
    assert _taken(pacer) == 15 - 2  # the two sent before the reset are not answered yet


def test_resets_after_is_hours_minutes_seconds() -> None:
    assert duration_header({"h": "00:00:05"}, "h") == 5
    assert duration_header({"h": "01:02:03"}, "h") == 3723
    assert duration_header({"h": "soon"}, "h") is None


def test_requests_are_routed_to_their_subscription_or_to_resource_graph() -> None:
    pacers = Pacers("/providers/Microsoft.ResourceGraph/resources")
    sub = "/subscriptions/AAAA/resourceGroups/rg/providers/x"

    assert pacers.for_path(sub) is pacers.subscription("aaaa")
    assert pacers.for_path("/providers/microsoft.resourcegraph/resources") is pacers.graph
    assert pacers.for_path("/tenants") is None


def test_a_prepaid_token_is_spent_by_the_first_request_or_refunded() -> None:
    pacers = Pacers("/g")
    pacer = pacers.subscription("s")
    assert pacer.try_take()
    pacer.answered(200, {REMAINING_READS_HEADER: "0"})
    assert not pacer.try_take()

    with pacers.prepaid(pacer):
        pass  # nothing sent: the token goes back
    assert pacer.try_take()
    with pacers.prepaid(pacer):
        pacers.take(pacer, deadline=float("inf"))  # spends the prepaid token, does not wait
    assert pacers.waited == 0
