"""The HTTP pipeline every ARM request goes through: read-only, bounded in time, counted.

The SDK's default pipeline is unsafe for an auditor in two ways, both fixed here:

- ``ARMAutoResourceProviderRegistrationPolicy`` answers a 409 ``MissingSubscriptionRegistration``
  by POSTing a provider registration and polling: a write. It is left out of the pipeline.
- ``RetryPolicy`` retries 10 times and sleeps for whatever ``Retry-After`` ARM asks, with no cap.
  Here retries are few, every wait must fit in the run's remaining time budget, and each
  attempt's connect/read timeouts are capped by that budget, so ``--timeout`` bounds the run.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import (
    ContentDecodePolicy,
    CustomHookPolicy,
    DistributedTracingPolicy,
    HeadersPolicy,
    HTTPPolicy,
    NetworkTraceLoggingPolicy,
    ProxyPolicy,
    RedirectPolicy,
    RequestIdPolicy,
    RetryPolicy,
    SansIOHTTPPolicy,
    SensitiveHeaderCleanupPolicy,
    UserAgentPolicy,
)
from azure.core.pipeline.transport import HttpTransport
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy, ARMHttpLoggingPolicy

# Attempts after the first one; with exponential backoff 0.5 s, 1 s, 2 s between them.
RETRIES = 3
BACKOFF_FACTOR = 0.5
BACKOFF_MAX_SECONDS = 8.0
# Upper bounds per attempt; both are lowered further to the time left in the run.
CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 30.0


class BudgetExhausted(Exception):
    """The run's time budget cannot cover the next attempt or wait; carries a readable reason."""


@dataclass
class Budget:
    """The whole run's deadline (monotonic clock), shared by every request."""

    total_seconds: float
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.total_seconds

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0


@dataclass
class RequestCounter:
    """Counts requests actually sent (each attempt, each page): the benchmark's figure."""

    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self) -> None:
        with self._lock:
            self._count += 1

    @property
    def count(self) -> int:
        with self._lock:
            return self._count


class BudgetedRetryPolicy(RetryPolicy[Any, Any]):
    """Few retries, and never a wait (Retry-After or backoff) that outlasts the budget."""

    def __init__(self, budget: Budget) -> None:
        super().__init__(
            retry_total=RETRIES,
            retry_connect=RETRIES,
            retry_read=RETRIES,
            retry_status=RETRIES,
            retry_backoff_factor=BACKOFF_FACTOR,
            retry_backoff_max=BACKOFF_MAX_SECONDS,
        )
        self._budget = budget

    def sleep(
        self,
        settings: dict[str, Any],
        transport: HttpTransport[Any, Any],
        response: PipelineResponse[Any, Any] | None = None,
    ) -> None:
        retry_after = self.get_retry_after(response) if response is not None else None
        wait = retry_after if retry_after else self.get_backoff_time(settings)
        remaining = self._budget.remaining()
        if wait >= remaining:
            if response is not None:
                status = response.http_response.status_code
                asked = f"answered {status} and asked to retry after {wait:g} s"
            else:
                asked = f"failed ({_last_error(settings)}); the next retry would wait {wait:g} s"
            raise BudgetExhausted(
                f"ARM {asked}, beyond the {max(remaining, 0):.0f} s left of the "
                f"{self._budget.total_seconds:g} s --timeout"
            )
        super().sleep(settings, transport, response)


def _last_error(settings: dict[str, Any]) -> str:
    history = settings.get("history") or []
    error = getattr(history[-1], "error", None) if history else None
    return "no response" if error is None else short_error(error)


def short_error(error: BaseException) -> str:
    """``Type: message`` on one line; for urllib3's long wrappers, just what caused them."""
    text = " ".join(str(error).split())
    cause = text.find("(Caused by ")
    if cause >= 0:
        text = text[cause + len("(Caused by ") :].rstrip(")")
    return f"{type(error).__name__}: {text[:240]}" if text else type(error).__name__


class DeadlinePolicy(SansIOHTTPPolicy[Any, Any]):
    """Per attempt: refuse to start after the deadline, and cap timeouts to the time left."""

    def __init__(self, budget: Budget, counter: RequestCounter) -> None:
        self._budget = budget
        self._counter = counter

    def on_request(self, request: PipelineRequest[Any]) -> None:
        remaining = self._budget.remaining()
        if remaining <= 0:
            raise BudgetExhausted(
                f"the {self._budget.total_seconds:g} s --timeout ran out before this request"
            )
        options = request.context.options
        options["connection_timeout"] = min(CONNECT_TIMEOUT_SECONDS, remaining)
        options["read_timeout"] = min(READ_TIMEOUT_SECONDS, remaining)
        self._counter.add()


def read_only_policies(
    *,
    credential: TokenCredential,
    scopes: list[str],
    budget: Budget,
    counter: RequestCounter,
    user_agent: str,
) -> list[HTTPPolicy[Any, Any] | SansIOHTTPPolicy[Any, Any]]:
    """The SDK's default ARM pipeline minus provider registration, with our retry and deadline."""
    return [
        RequestIdPolicy(),
        HeadersPolicy(),
        UserAgentPolicy(user_agent=user_agent),
        ProxyPolicy(),
        ContentDecodePolicy(),
        RedirectPolicy(),
        BudgetedRetryPolicy(budget),
        ARMChallengeAuthenticationPolicy(credential, *scopes),
        DeadlinePolicy(budget, counter),
        CustomHookPolicy(),
        NetworkTraceLoggingPolicy(),
        DistributedTracingPolicy(),
        SensitiveHeaderCleanupPolicy(),
        ARMHttpLoggingPolicy(),
    ]
