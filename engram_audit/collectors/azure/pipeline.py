"""The HTTP pipeline every ARM request goes through: read-only, bounded in time, counted.

The SDK's default pipeline is unsafe for an auditor in three ways, all fixed here:

- ``ARMAutoResourceProviderRegistrationPolicy`` answers a 409 ``MissingSubscriptionRegistration``
  by POSTing a provider registration and polling: a write. It is left out of the pipeline.
- ``RetryPolicy`` retries 10 times and sleeps for whatever ``Retry-After`` ARM asks, with no cap.
  Here retries are few, every wait must fit in the run's remaining time budget, and each
  attempt's connect/read timeouts are capped by that budget, so ``--timeout`` bounds the run.
- Paging follows ``nextLink`` verbatim, to whatever host it names, with the bearer token
  (shared/reference/README.md, "Azure SDK facts"), and redirects are followed too. Here
  ``ReadOnlyGuardPolicy`` sits after the redirect and retry policies and before the token is
  added, so it sees every attempt and every hop: it refuses, before anything is sent, a request
  to any origin but the ARM endpoint's and any method but GET (and POST to exactly the Resource
  Graph query path).

A fourth addition paces requests: ``PacingPolicy`` makes every attempt wait for its
subscription's read budget (or Resource Graph's quota) and feeds every answer's throttling
headers back to it (``pacing.py``), so a fleet is read at the rate ARM allows instead of being
throttled.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

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

from engram_audit.collectors.azure.pacing import BudgetTimeout, Pacers

# Attempts after the first one; with exponential backoff 0.5 s, 1 s, 2 s between them.
RETRIES = 3
BACKOFF_FACTOR = 0.5
BACKOFF_MAX_SECONDS = 8.0
# Upper bounds per attempt; both are lowered further to the time left in the run.
CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 30.0


# The one write-shaped request a read-only audit may send: a Resource Graph query (POST with a
# KQL body, read-only by construction), at exactly this path under the ARM endpoint.
RESOURCE_GRAPH_PATH = "/providers/Microsoft.ResourceGraph/resources"
_DEFAULT_PORTS = {"https": 443, "http": 80}
_SHOWN_LIMIT = 120


class BudgetExhausted(Exception):
    """The run's time budget cannot cover the next attempt or wait; carries a readable reason."""


class RequestRefused(Exception):
    """The read-only guard stopped a request before it left the process; carries the reason.

    Deliberately not an ``AzureError``: the retry policy must not retry it.
    """


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


Origin = tuple[str, str, int]


def origin_of(url: str) -> Origin | None:
    """``(scheme, host, port)`` of an absolute URL, default port filled in; None if unusable.

    A URL with user information is unusable: the transport would turn it into credentials.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.casefold()
    if not parts.hostname or parts.username is not None or scheme not in _DEFAULT_PORTS:
        return None
    return scheme, parts.hostname.casefold(), port if port is not None else _DEFAULT_PORTS[scheme]


def _shown(origin: Origin | None, url: str) -> str:
    if origin is None:
        text = " ".join(url.split())
        return repr(text[:_SHOWN_LIMIT])
    scheme, host, port = origin
    host = host if ":" not in host else f"[{host}]"
    return f"{scheme}://{host[:_SHOWN_LIMIT]}:{port}"


class ReadOnlyGuardPolicy(SansIOHTTPPolicy[Any, Any]):
    """Refuse, before a byte is sent, any request that is not a read of the ARM endpoint.

    Allowed: ``GET`` to the endpoint's scheme, host and port (whatever the path), and ``POST``
    to exactly ``<endpoint path>/providers/Microsoft.ResourceGraph/resources``. Everything else
    -- another host or port (a hostile ``nextLink`` or redirect), plain http, user information
    in the URL, PUT, PATCH, DELETE, HEAD, any other POST -- raises ``RequestRefused``.
    """

    def __init__(self, endpoint: str) -> None:
        origin = origin_of(endpoint)
        if origin is None:
            raise ValueError(f"not a usable ARM endpoint: {endpoint!r}")
        self._origin = origin
        self._endpoint = _shown(origin, endpoint)
        self._graph_path = urlsplit(endpoint).path.rstrip("/") + RESOURCE_GRAPH_PATH

    def on_request(self, request: PipelineRequest[Any]) -> None:
        http = request.http_request
        url, method = str(http.url), str(http.method)
        origin = origin_of(url)
        if origin != self._origin:
            raise RequestRefused(
                f"refused to send {method[:16]} to {_shown(origin, url)}, which is not the ARM "
                f"endpoint {self._endpoint} (a nextLink or redirect in ARM's answer named it); "
                f"nothing was sent there"
            )
        if method == "GET":
            return
        if method == "POST" and urlsplit(url).path == self._graph_path:
            return
        path = urlsplit(url).path[:_SHOWN_LIMIT]
        raise RequestRefused(
            f"refused to send {method[:16]} {path}: engram-audit only reads (GET, and POST "
            f"to {RESOURCE_GRAPH_PATH}); nothing was sent"
        )


class PacingPolicy(HTTPPolicy[Any, Any]):
    """Each attempt waits for its budget; each answer (or 429) updates it.

    Sits after the retry policy and the read-only guard, so a retried attempt is paced like any
    other and a refused request takes no budget; before the deadline policy, so each attempt's
    timeouts are capped by the time left after the wait.
    """

    def __init__(self, pacers: Pacers, budget: Budget) -> None:
        super().__init__()
        self._pacers = pacers
        self._budget = budget

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        pacer = self._pacers.for_path(urlsplit(str(request.http_request.url)).path)
        if pacer is None:
            return self.next.send(request)
        try:
            self._pacers.take(pacer, self._budget.deadline)
        except BudgetTimeout as error:
            raise BudgetExhausted(
                f"{error} (the {self._budget.total_seconds:g} s --timeout)"
            ) from None
        try:
            response = self.next.send(request)
        except BaseException:
            pacer.failed()
            raise
        http = response.http_response
        headers = {str(k).casefold(): str(v) for k, v in http.headers.items()}
        pacer.answered(int(http.status_code), headers)
        return response


def read_only_policies(
    *,
    endpoint: str,
    credential: TokenCredential,
    scopes: list[str],
    budget: Budget,
    counter: RequestCounter,
    user_agent: str,
    pacers: Pacers | None = None,
) -> list[HTTPPolicy[Any, Any] | SansIOHTTPPolicy[Any, Any]]:
    """The SDK's default ARM pipeline minus provider registration, with our retry, deadline and
    read-only guard (after redirects and retries, so it sees every attempt and hop; before
    authentication, so a refused request never even gets a token), and the pacer."""
    paced: list[HTTPPolicy[Any, Any] | SansIOHTTPPolicy[Any, Any]] = (
        [PacingPolicy(pacers, budget)] if pacers is not None else []
    )
    return [
        RequestIdPolicy(),
        HeadersPolicy(),
        UserAgentPolicy(user_agent=user_agent),
        ProxyPolicy(),
        ContentDecodePolicy(),
        RedirectPolicy(),
        BudgetedRetryPolicy(budget),
        ReadOnlyGuardPolicy(endpoint),
        *paced,
        ARMChallengeAuthenticationPolicy(credential, *scopes),
        DeadlinePolicy(budget, counter),
        CustomHookPolicy(),
        NetworkTraceLoggingPolicy(),
        DistributedTracingPolicy(),
        SensitiveHeaderCleanupPolicy(),
        ARMHttpLoggingPolicy(),
    ]
