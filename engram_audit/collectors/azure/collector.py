"""Live Azure collector: flexible servers and what the enabled rules read of them, via ARM.

Read-only and confined to the ARM endpoint (``pipeline.ReadOnlyGuardPolicy`` refuses anything
else before it is sent), paced (``pacing``: one read budget per subscription, shared by every
worker; subscriptions proceed side by side, each with up to ``--concurrency`` requests in
flight), and bounded in time: ``timeout_seconds`` is a deadline for the whole run, signing in
included.

Servers are found one of three ways (``request.Discovery``): one GET (``--server``), one ARM
list (``--resource-group``), or one paged Resource Graph query (``graph``: tags, several
subscriptions or servers, a management group), which also brings each server's body. Then each
server's parts are read, one request (page) each, but only the parts the enabled rules read
(``parts``, from ``CollectionPlan.parts``): a part no rule reads is never requested, so a
permission missing for it cannot make the run incomplete. Metric alerts from Resource Graph
count only where ARM's permissions list confirms the identity may read them (``permissions``:
one read per subscription). ``--shard I/N`` keeps one deterministic slice of the servers found,
and the section's ``shard`` records which slice of how large an estate (its ``estate_digest``),
for ``merge`` to check that the shards of a run are all there and saw the same servers.

Whatever could not be read becomes a ``CollectionIssue`` naming the resource, the part (the
``AzureServer`` field left ``None``) and the reason; so does a discovery that finds no server,
unless ``allow_empty``. Only "cannot even start" problems raise ``AzureCollectionError``
(``AzureTargetError`` when the settings are wrong).
"""

from __future__ import annotations

import queue
import re
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from engram_audit.collectors.azure.clients import (
    ArmClients,
    DeadlineCredential,
    build_credential,
    ca_bundle,
    check_credential,
    resolve_target,
)
from engram_audit.collectors.azure.errors import (
    AzureCollectionError,
    AzureTargetError,
    arm_error_code,
    describe_failure,
)
from engram_audit.collectors.azure.graph import (
    GRAPH_PERMISSION,
    UnsafeLiteral,
    alert_body,
    alerts_query,
    query_rows,
    server_body,
    servers_query,
)
from engram_audit.collectors.azure.pacing import Pacer
from engram_audit.collectors.azure.parts import (
    METRIC_ALERTS_PERMISSION,
    PARTS,
    SERVER_PERMISSION,
    Part,
    ServerRef,
    UnexpectedList,
    metric_alert,
    read_metric_alerts,
)
from engram_audit.collectors.azure.permissions import (
    PERMISSIONS_PERMISSION,
    Permission,
    allows,
    read_permissions,
)
from engram_audit.collectors.azure.pipeline import Budget, BudgetExhausted
from engram_audit.collectors.azure.request import (
    MAX_CONCURRENCY,
    AzureRequest,
    Discovery,
    estate_digest,
    in_flight_limit,
    no_server_found,
)
from engram_audit.collectors.azure.workers import DaemonPool
from engram_audit.collectors.progress import StatusLine
from engram_audit.model.base import Source
from engram_audit.model.snapshot import (
    AZURE_PARTS,
    AzureSection,
    AzureServer,
    AzureShard,
    CollectionIssue,
    MetricAlert,
)
from engram_audit.model.values import dig

__all__ = [
    "AzureCollection",
    "AzureCollectionError",
    "AzureRequest",
    "AzureTargetError",
    "collect_azure",
]

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_MANAGEMENT_GROUP = re.compile(r"^[A-Za-z0-9._()\-]{1,90}$")
_SERVER_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)"
    r"/providers/microsoft\.dbforpostgresql/flexibleservers/(?P<name>[^/]+)/?$",
    re.IGNORECASE,
)
# The snapshot part (model.snapshot.PARTS) each AzureServer field belongs to.
_PART_OF_FIELD = {field: part for part, fields in AZURE_PARTS.items() for field in fields}
METRIC_ALERTS_PART = "azure.metric_alerts"


@dataclass(frozen=True)
class AzureCollection:
    section: AzureSection
    issues: tuple[CollectionIssue, ...]
    requests_sent: int = 0
    # Beyond the snapshot: what the run cost, for the CLI's progress and the benchmark.
    reads_sent: int = 0
    graph_queries: int = 0
    throttled: int = 0
    budget_wait_seconds: float = 0.0
    servers_found: int = 0


def collect_azure(
    request: AzureRequest, *, show_progress: bool, parts: frozenset[str] | None = None
) -> AzureCollection:
    """Collect what ``request`` names; ``parts`` are the snapshot parts the enabled rules read
    (``CollectionPlan.parts``; None: every part)."""
    _validate(request)
    target = resolve_target(request.cloud, request.arm_endpoint)
    verify = ca_bundle()
    # The deadline starts before the first token is asked for: signing in counts in --timeout.
    budget = Budget(request.timeout_seconds)
    credential, secret = build_credential(request.token_env, target.authority)
    credential = DeadlineCredential(credential, budget)
    if secret is None:
        check_credential(credential, target.scopes)
    clients = ArmClients(
        target=target,
        credential=credential,
        budget=budget,
        concurrency=in_flight_limit(request),
        verify=verify,
    )
    try:
        progress = _Progress(enabled=show_progress)
        return _Run(request, clients, budget, secret, progress, parts).execute()
    finally:
        clients.close()


def _validate(request: AzureRequest) -> None:
    if not request.subscription_ids and not request.management_group:
        raise AzureTargetError("give a subscription id or a management group")
    for subscription in request.subscription_ids:
        if not _GUID.match(subscription):
            raise AzureTargetError(
                f"subscription id must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), "
                f"got {subscription[:60]!r}"
            )
    if request.management_group is not None and not _MANAGEMENT_GROUP.match(
        request.management_group
    ):
        raise AzureTargetError(
            f"management group id must be 1-90 letters, digits, '-', '_', '.', '(' or ')', "
            f"got {request.management_group[:60]!r}"
        )
    if request.server_name and not request.resource_group:
        raise AzureTargetError("a server name needs its resource group")
    if request.discovery is Discovery.GRAPH:
        try:
            servers_query(request)
        except UnsafeLiteral as error:
            raise AzureTargetError(f"cannot search Resource Graph for {error}") from None
    if not 1 <= request.concurrency <= MAX_CONCURRENCY:
        raise AzureTargetError(
            f"concurrency must be between 1 and {MAX_CONCURRENCY}, got {request.concurrency}"
        )
    if not request.timeout_seconds > 0:
        raise AzureTargetError(f"timeout must be positive, got {request.timeout_seconds:g}")
    shard = request.shard
    if shard is not None and not 1 <= shard.index <= shard.count:
        raise AzureTargetError(f"--shard must be I/N with 1 <= I <= N, got {shard}")


def server_id(subscription: str, group: str, name: str) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/{group}"
        f"/providers/Microsoft.DBforPostgreSQL/flexibleServers/{name}"
    )


def scope_id(request: AzureRequest) -> str:
    """The resource an issue about the whole scope is recorded on."""
    subscriptions = request.subscription_ids
    if request.server_name and request.resource_group and request.discovery is Discovery.SERVER:
        return server_id(subscriptions[0], request.resource_group, request.server_name)
    if request.management_group and not subscriptions:
        return f"/providers/Microsoft.Management/managementGroups/{request.management_group}"
    scopes = [f"/subscriptions/{s}" for s in subscriptions]
    if request.resource_group:
        scopes = [f"{s}/resourceGroups/{request.resource_group}" for s in scopes]
    return ", ".join(scopes)


# --- one run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Targets:
    """Task: find the servers (one GET, an ARM list, or a Resource Graph query)."""


@dataclass(frozen=True)
class _Alerts:
    """Task: metric alerts, once for the run (Resource Graph) or once per subscription (ARM)."""

    subscription_id: str | None = None


@dataclass(frozen=True)
class _PartOf:
    server: ServerRef
    part: Part


@dataclass(frozen=True)
class _Permissions:
    """Task: the identity's permissions on a subscription, to confirm that it may read the
    metric alerts Resource Graph brought (``permissions``)."""

    subscription_id: str


_Task = _Targets | _Alerts | _PartOf | _Permissions


@dataclass(frozen=True)
class _Held:
    """Ready work a budget holds back: seconds until it allows the next request, and whether
    only budgets hold work back (the time waited counts as waiting for the read budget)."""

    seconds: float
    only_by_budgets: bool


@dataclass(frozen=True)
class _Discovery:
    """What finding the servers gave: the servers, entries refused (as issues), list size."""

    found: tuple[tuple[ServerRef, dict[str, Any]], ...] = ()
    rejected: tuple[CollectionIssue, ...] = ()
    listed: int = 0


@dataclass
class _Found:
    ref: ServerRef
    body: dict[str, Any]
    outstanding: int
    values: dict[str, Any] = field(default_factory=dict)


class _Run:
    def __init__(
        self,
        request: AzureRequest,
        clients: ArmClients,
        budget: Budget,
        secret: str | None,
        progress: _Progress,
        parts: frozenset[str] | None,
    ) -> None:
        self.request = request
        self.clients = clients
        self.pacers = clients.pacers
        self.budget = budget
        self.secret = secret
        self.progress = progress
        self.parts = tuple(p for p in PARTS if parts is None or _PART_OF_FIELD[p.field] in parts)
        self.want_alerts = parts is None or METRIC_ALERTS_PART in parts
        self.found: dict[str, _Found] = {}
        self.discovered = 0
        # estate_digest of every server discovered, before --shard keeps a slice; None until
        # the discovery succeeds.
        self.estate: str | None = None
        self.done_servers = 0
        self.alerts: dict[str, tuple[MetricAlert, ...]] = {}
        self.alerts_failure: dict[str, str] = {}
        # Resource Graph leaves out what the identity cannot read: its metric alerts count only
        # where ARM confirms Microsoft.Insights/metricAlerts/read (subscription -> None when
        # confirmed, else why not).
        self.confirm_alerts = self.want_alerts and request.discovery is Discovery.GRAPH
        self.alerts_unconfirmed: dict[str, str | None] = {}
        self.issues: list[CollectionIssue] = []
        # Each running task and the budget (pacer id) it was dispatched under.
        self.pending: dict[Future[Any], tuple[_Task, int]] = {}
        self.ready: dict[int, deque[tuple[_Task, Pacer, Callable[[], Any]]]] = {}
        self.order: deque[int] = deque()
        # --concurrency bounds the requests in flight per budget; the pool, the whole run.
        self.in_flight: dict[int, int] = {}
        self.workers = in_flight_limit(request)
        self.finished: queue.Queue[Future[Any]] = queue.Queue()
        self.pool = DaemonPool(self.workers, "engram-audit-arm")
        self.started = time.monotonic()

    # --- the loop -------------------------------------------------------------------------

    def execute(self) -> AzureCollection:
        request = self.request
        try:
            self._queue(_Targets(), self._discovery_pacer(), self._find_servers)
            if self.want_alerts:
                if request.discovery is Discovery.GRAPH:
                    self._queue(_Alerts(), self.pacers.graph, self._graph_alerts)
                else:
                    for subscription in request.subscription_ids:
                        self._queue(
                            _Alerts(subscription),
                            self.pacers.subscription(subscription),
                            _bind_alerts(self.clients, subscription),
                        )
            self._loop()
        finally:
            # Requests still running are not waited for: each read's timeout is capped by the
            # deadline, but an endpoint trickling bytes could hold one for longer (workers.py).
            self.pool.shutdown()
            self.progress.done()
        servers = self._servers()
        shard = None
        if request.shard is not None:
            shard = AzureShard(
                index=request.shard.index,
                count=request.shard.count,
                servers_found=None if self.estate is None else self.discovered,
                estate=self.estate,
            )
        return AzureCollection(
            section=AzureSection(servers=servers, shard=shard),
            issues=tuple(sorted(self.issues, key=_issue_order)),
            requests_sent=self.clients.counter.count,
            reads_sent=self.pacers.reads_sent(),
            graph_queries=self.pacers.graph.stats().sent,
            throttled=self.pacers.throttled(),
            budget_wait_seconds=self.pacers.waited,
            servers_found=self.discovered,
        )

    def _loop(self) -> None:
        while self.pending or self.order:
            held = self._dispatch()
            remaining = self.budget.remaining()
            if remaining <= 0 or not (self.pending or self.order):
                break
            timeout = remaining if held is None else min(remaining, held.seconds)
            started = time.monotonic()
            try:
                future = self.finished.get(timeout=timeout)
            except queue.Empty:
                future = None
            if held is not None and held.only_by_budgets:
                self.pacers.add_wait(time.monotonic() - started)
            if future is not None:
                task, key = self.pending.pop(future)
                self.in_flight[key] -= 1
                self._settle(task, future)
            self._show_progress()
        for task in [*(task for task, _ in self.pending.values()), *self._unsent()]:
            self._fail(task, BudgetExhausted(self._ran_out()))

    def _dispatch(self) -> _Held | None:
        """Hand ready tasks to workers, round-robin over the budgets (each subscription's, and
        Resource Graph's), while a budget has fewer than ``--concurrency`` requests in flight and
        its pacer allows one more now; the pool bounds the whole run (``in_flight_limit``).

        Returns when a budget will next allow a request, if ready work is held back by a budget
        (None: only by worker limits, or nothing is ready), so the loop wakes up for it.
        """
        held: _Held | None = None
        by_limit = False
        skipped = 0
        limit = self.request.concurrency
        while self.order and len(self.pending) < self.workers and skipped < len(self.order):
            key = self.order[0]
            if self.in_flight.get(key, 0) >= limit:
                by_limit = True
                self.order.rotate(-1)
                skipped += 1
                continue
            tasks = self.ready[key]
            task, pacer, work = tasks[0]
            if not pacer.try_take():
                delay = pacer.delay()
                held = _Held(delay if held is None else min(held.seconds, delay), True)
                self.order.rotate(-1)
                skipped += 1
                continue
            skipped = 0
            tasks.popleft()
            self.order.popleft()
            if tasks:
                self.order.append(key)
            else:
                del self.ready[key]
            self._submit(task, pacer, work, key)
        if held is None or not self.order:
            return None
        # Also waiting for a worker (the pool, or a budget at --concurrency): not budget time.
        return _Held(held.seconds, not by_limit and len(self.pending) < self.workers)

    def _queue(self, task: _Task, pacer: Pacer, work: Callable[[], Any]) -> None:
        key = id(pacer)
        if key not in self.ready:
            self.ready[key] = deque()
            self.order.append(key)
        self.ready[key].append((task, pacer, work))

    def _unsent(self) -> list[_Task]:
        tasks = [task for entries in self.ready.values() for task, _, _ in entries]
        self.ready.clear()
        self.order.clear()
        return tasks

    def _submit(self, task: _Task, pacer: Pacer, work: Callable[[], Any], key: int) -> None:
        pacers = self.pacers

        def run() -> Any:
            with pacers.prepaid(pacer):
                return work()

        future = self.pool.submit(run)
        self.pending[future] = (task, key)
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        # A completion queue keeps the main loop O(1) per finished request, whatever the fleet.
        future.add_done_callback(self.finished.put)

    def _ran_out(self) -> str:
        return f"the {self.budget.total_seconds:g} s --timeout ran out"

    def _show_progress(self) -> None:
        if not self.progress.enabled:
            return
        queued = sum(len(entries) for entries in self.ready.values()) + len(self.pending)
        self.progress.show(
            done=self.done_servers,
            total=len(self.found),
            reads=self.pacers.reads_sent(),
            waited=self.pacers.waited,
            left=self._time_left(queued),
        )

    def _time_left(self, queued: int) -> float | None:
        """Seconds left: the slower of the pace so far and what the budgets allow."""
        elapsed = time.monotonic() - self.started
        sent = self.pacers.reads_sent() + self.pacers.graph.stats().sent
        if not sent or not elapsed:
            return None
        by_pace = queued * elapsed / sent
        by_budget = 0.0
        for entries in self.ready.values():
            _, pacer, _ = entries[0]
            estimate = pacer.stats().estimate or 0.0
            rate = getattr(pacer, "refill_per_second", None)
            if rate:
                by_budget = max(by_budget, (len(entries) - estimate) / rate)
        return max(by_pace, by_budget)

    # --- finding servers ------------------------------------------------------------------

    def _discovery_pacer(self) -> Pacer:
        if self.request.discovery is Discovery.GRAPH:
            return self.pacers.graph
        return self.pacers.subscription(self.request.subscription_ids[0])

    def _find_servers(self) -> _Discovery:
        if self.request.discovery is Discovery.SERVER:
            return self._get_server()
        if self.request.discovery is Discovery.GROUP:
            return self._list_group()
        return self._query_servers()

    def _get_server(self) -> _Discovery:
        """The one server asked for, identified by its ARM id (or by what was requested).

        The body's ``name`` is never used to address or label a server: a hostile answer whose
        ``name`` disagrees with its ``id`` must not redirect the child GETs to another server.
        """
        request = self.request
        subscription = request.subscription_ids[0]
        group, name = request.resource_group or "", request.server_name or ""
        body = self.clients.postgres(subscription).servers.get(group, name).as_dict()
        requested = ServerRef(
            id=server_id(subscription, group, name),
            subscription_id=subscription,
            resource_group=group,
            name=name,
        )
        ref = _requested_ref(body, requested)
        if isinstance(ref, str):
            return _Discovery(rejected=(_issue(requested.id, None, ref),), listed=1)
        return _Discovery(found=((ref, body),), listed=1)

    def _list_group(self) -> _Discovery:
        request = self.request
        subscription = request.subscription_ids[0]
        listing = self.clients.postgres(subscription).servers.list_by_resource_group(
            request.resource_group or ""
        )
        scope = scope_id(request)
        found: list[tuple[ServerRef, dict[str, Any]]] = []
        rejected: list[CollectionIssue] = []
        listed = 0
        for server in listing:
            listed += 1
            body = server.as_dict()
            if request.tag is not None and not _has_tag(body, request.tag):
                continue
            ref = _listed_ref(body, request, f"the flexible servers list of {scope}")
            if isinstance(ref, str):
                rejected.append(_issue(scope, None, ref))
            else:
                found.append((ref, body))
        return _Discovery(tuple(found), tuple(rejected), listed)

    def _query_servers(self) -> _Discovery:
        """One paged Resource Graph query; every filter it applied is applied again here."""
        request = self.request
        scope = scope_id(request)
        found: list[tuple[ServerRef, dict[str, Any]]] = []
        rejected: list[CollectionIssue] = []
        listed = 0
        for row in query_rows(self.clients, request, servers_query(request)):
            body = server_body(row)
            if str(row.get("type", "")).casefold() != "microsoft.dbforpostgresql/flexibleservers":
                rejected.append(
                    _issue(
                        scope,
                        None,
                        f"Resource Graph answered with a resource that is not a flexible server "
                        f"({_shown_id(row.get('id'))}): not audited",
                    )
                )
                continue
            ref = _listed_ref(body, request, f"Resource Graph's answer for {scope}")
            if isinstance(ref, str):
                rejected.append(_issue(scope, None, ref))
                continue
            listed += 1
            if request.tag is not None and not _has_tag(body, request.tag):
                continue
            found.append((ref, body))
        return _Discovery(tuple(found), tuple(rejected), listed)

    def _graph_alerts(self) -> tuple[MetricAlert, ...]:
        subscriptions = {s.casefold() for s in self.request.subscription_ids}
        alerts = []
        for row in query_rows(self.clients, self.request, alerts_query()):
            match = re.match(r"^/subscriptions/([^/]+)/", str(row.get("id") or ""), re.I)
            if subscriptions and (match is None or match[1].casefold() not in subscriptions):
                continue
            if str(row.get("type", "")).casefold() != "microsoft.insights/metricalerts":
                continue
            alerts.append(metric_alert(alert_body(row)))
        return tuple(alerts)

    # --- results ------------------------------------------------------------------------

    def _settle(self, task: _Task, future: Future[Any]) -> None:
        error = future.exception()
        if error is not None:
            self._fail(task, error)
            return
        result = future.result()
        if isinstance(task, _Targets):
            self._servers_found(result)
        elif isinstance(task, _Alerts):
            self.alerts[_alerts_key(task)] = result
        elif isinstance(task, _Permissions):
            self._permissions_read(task, result)
        else:
            entry = self.found[task.server.id.casefold()]
            entry.values[task.part.field] = result
            self._part_settled(entry)

    def _servers_found(self, result: _Discovery) -> None:
        self.issues.extend(result.rejected)
        if not result.found and not result.rejected and not self.request.allow_empty:
            self.issues.append(self._empty_issue(result.listed))
        unique: dict[str, tuple[ServerRef, dict[str, Any]]] = {}
        for ref, body in result.found:
            unique.setdefault(ref.id.casefold(), (ref, body))
        ordered = sorted(
            unique.values(), key=lambda f: (f[0].subscription_id.casefold(), f[0].id.casefold())
        )
        self.discovered = len(ordered)
        self.estate = estate_digest(unique)
        if self.request.shard is not None:
            start, end = self.request.shard.bounds(len(ordered))
            ordered = ordered[start:end]
        for ref, body in ordered:
            entry = _Found(ref, body, outstanding=len(self.parts))
            self.found[ref.id.casefold()] = entry
            if not self.parts:
                self.done_servers += 1
            pacer = self.pacers.subscription(ref.subscription_id)
            subscription = ref.subscription_id.casefold()
            if self.confirm_alerts and subscription not in self.alerts_unconfirmed:
                # One read per subscription, queued before its servers' parts.
                self.alerts_unconfirmed[subscription] = _UNCONFIRMED.format(
                    scope=f"/subscriptions/{ref.subscription_id}", why=self._ran_out()
                )
                self._queue(
                    _Permissions(ref.subscription_id),
                    pacer,
                    _bind_permissions(self.clients, ref.subscription_id),
                )
            for part in self.parts:
                self._queue(_PartOf(ref, part), pacer, _bind(part, self.clients, ref))

    def _permissions_read(self, task: _Permissions, permissions: tuple[Permission, ...]) -> None:
        scope = f"/subscriptions/{task.subscription_id}"
        granted = allows(permissions, METRIC_ALERTS_PERMISSION)
        self.alerts_unconfirmed[task.subscription_id.casefold()] = (
            None if granted else _NOT_GRANTED.format(scope=scope)
        )

    def _fail(self, task: _Task, error: BaseException) -> None:
        if isinstance(task, _Permissions):
            scope = f"/subscriptions/{task.subscription_id}"
            if isinstance(error, UnexpectedList):
                why = f"the permissions list of {scope} could not be read: {error}"
            else:
                why = describe_failure(
                    error,
                    what="the permissions list",
                    resource=scope,
                    permission=PERMISSIONS_PERMISSION,
                    secret=self.secret,
                )
            self.alerts_unconfirmed[task.subscription_id.casefold()] = _UNCONFIRMED.format(
                scope=scope, why=why
            )
            return
        if isinstance(task, _Alerts):
            graph = task.subscription_id is None
            self.alerts_failure[_alerts_key(task)] = describe_failure(
                error,
                what="metric alerts" + (" (Resource Graph query)" if graph else ""),
                resource=scope_id(self.request)
                if graph
                else f"/subscriptions/{task.subscription_id}",
                permission=GRAPH_PERMISSION if graph else METRIC_ALERTS_PERMISSION,
                secret=self.secret,
            )
        elif isinstance(task, _Targets):
            self.issues.append(self._target_issue(error))
        else:
            entry = self.found[task.server.id.casefold()]
            self._part_settled(entry)
            reason = describe_failure(
                error,
                what=task.part.what,
                resource=task.server.id,
                permission=task.part.permission,
                secret=self.secret,
            )
            self.issues.append(_issue(task.server.id, task.part.field, reason))

    def _empty_issue(self, listed: int) -> CollectionIssue:
        """An empty answer is not a green gate: a typo in --tag must not pass as "0 of 0"."""
        request = self.request
        source = "Resource Graph" if request.discovery is Discovery.GRAPH else "ARM"
        if request.tag is not None and listed:
            found = f": {listed} listed, none with that tag"
        else:
            found = f": {source} listed none"
        return _issue(
            scope_id(request),
            None,
            f"{no_server_found(request)}{found} (give --allow-empty if that is expected)",
        )

    def _target_issue(self, error: BaseException) -> CollectionIssue:
        request = self.request
        code = (arm_error_code(error) or "").casefold()
        scope = scope_id(request)
        if request.discovery is Discovery.GRAPH:
            reason = describe_failure(
                error,
                what="Resource Graph query of flexible servers",
                resource=scope,
                permission=GRAPH_PERMISSION,
                secret=self.secret,
            )
            return _issue(scope, None, reason)
        subscription_id = request.subscription_ids[0]
        subscription = f"/subscriptions/{subscription_id}"
        if code == "subscriptionnotfound":
            return _issue(subscription, None, f"subscription {subscription_id} not found")
        if code == "resourcegroupnotfound" and request.resource_group:
            group = f"{subscription}/resourceGroups/{request.resource_group}"
            return _issue(
                group,
                None,
                f"resource group {request.resource_group} not found in subscription "
                f"{subscription_id}",
            )
        if getattr(error, "status_code", None) == 404 and request.server_name:
            return _issue(
                scope,
                None,
                f"server {request.server_name} not found in resource group "
                f"{request.resource_group} of subscription {subscription_id}",
            )
        what = "server" if request.discovery is Discovery.SERVER else "flexible servers list"
        reason = describe_failure(
            error, what=what, resource=scope, permission=SERVER_PERMISSION, secret=self.secret
        )
        return _issue(scope, None, reason)

    def _part_settled(self, entry: _Found) -> None:
        entry.outstanding -= 1
        if entry.outstanding == 0:
            self.done_servers += 1

    def _servers(self) -> tuple[AzureServer, ...]:
        servers: list[AzureServer] = []
        indexes = {key: _by_scope(alerts) for key, alerts in self.alerts.items()}
        for entry in sorted(self.found.values(), key=lambda e: e.ref.id.casefold()):
            ref = entry.ref
            covering: tuple[MetricAlert, ...] | None = None
            if self.want_alerts:
                key = self._alerts_key_for(ref)
                unconfirmed = self.alerts_unconfirmed.get(ref.subscription_id.casefold())
                if key not in indexes:
                    reason = self.alerts_failure.get(key) or self._ran_out()
                    self.issues.append(_issue(ref.id, "metric_alerts", reason))
                elif self.confirm_alerts and unconfirmed is not None:
                    self.issues.append(_issue(ref.id, "metric_alerts", unconfirmed))
                else:
                    covering = _covering(indexes[key], ref.id)
            servers.append(
                AzureServer(
                    id=ref.id,
                    name=ref.name,
                    resource_group=ref.resource_group,
                    subscription_id=ref.subscription_id,
                    resource=entry.body,
                    metric_alerts=covering,
                    **entry.values,
                )
            )
        return tuple(servers)

    def _alerts_key_for(self, ref: ServerRef) -> str:
        if self.request.discovery is Discovery.GRAPH:
            return ""
        return ref.subscription_id.casefold()


# Why metric alerts from Resource Graph are not taken as collected: it leaves out what the
# identity may not read, so "no alert" is an answer only where the permission is confirmed.
_NOT_GRANTED = (
    "metric alerts of {scope}: the identity lacks " + METRIC_ALERTS_PERMISSION + " there (its "
    "Microsoft.Authorization permissions do not grant it), and Resource Graph leaves out what the "
    "identity may not read: finding no alert would not mean there is none"
)
_UNCONFIRMED = (
    "metric alerts of {scope}: " + METRIC_ALERTS_PERMISSION + " not confirmed, and Resource Graph "
    "leaves out what the identity may not read: {why}"
)


def _bind_permissions(clients: ArmClients, subscription: str) -> Callable[[], Any]:
    return lambda: read_permissions(clients, subscription)


def _alerts_key(task: _Alerts) -> str:
    return (task.subscription_id or "").casefold()


def _bind_alerts(clients: ArmClients, subscription: str) -> Callable[[], Any]:
    return lambda: read_metric_alerts(clients, subscription)


def _by_scope(alerts: tuple[MetricAlert, ...]) -> dict[str, list[tuple[int, MetricAlert]]]:
    index: dict[str, list[tuple[int, MetricAlert]]] = {}
    for position, alert in enumerate(alerts):
        for scope in {s.rstrip("/").casefold() for s in alert.scopes}:
            index.setdefault(scope, []).append((position, alert))
    return index


def _covering(
    by_scope: dict[str, list[tuple[int, MetricAlert]]], resource_id: str
) -> tuple[MetricAlert, ...]:
    """Alerts whose scope is the server or a parent of it (``resource_id_covers``), in ARM's order.

    Each parent of the id is looked up instead of testing every alert against every server,
    which would be quadratic in a fleet.
    """
    segments = resource_id.rstrip("/").casefold().split("/")
    found: dict[int, MetricAlert] = {}
    for end in range(2, len(segments) + 1):
        for position, alert in by_scope.get("/".join(segments[:end]), ()):
            found[position] = alert
    return tuple(found[position] for position in sorted(found))


def _bind(part: Part, clients: ArmClients, ref: ServerRef) -> Callable[[], Any]:
    return lambda: part.read(clients, ref)


def _parse_server_id(value: object) -> ServerRef | None:
    """The server a flexible-server id names, or None when it is not one we can address safely.

    Segments that would change a URL's shape when put in a path (``?``, ``#``, ``%``, ``\\``,
    white space, control characters, ``.`` and ``..``) are refused rather than sent.
    """
    if not isinstance(value, str):
        return None
    match = _SERVER_ID.match(value)
    if match is None or not all(_safe_segment(match[key]) for key in ("sub", "rg", "name")):
        return None
    return ServerRef(
        id=value.rstrip("/"),
        subscription_id=match["sub"],
        resource_group=match["rg"],
        name=match["name"],
    )


def _safe_segment(segment: str) -> bool:
    return segment not in {".", ".."} and not any(
        char in "?#%\\" or char.isspace() or not char.isprintable() for char in segment
    )


def _shown_id(value: object) -> str:
    if not isinstance(value, str):
        return "none" if value is None else f"a JSON {type(value).__name__}, not a string"
    return repr(" ".join(value.split())[:200])


def _same_server(a: ServerRef, b: ServerRef) -> bool:
    # ARM resource ids compare case-insensitively (resourceGroups / resourcegroups, RG casing).
    def key(ref: ServerRef) -> tuple[str, str, str]:
        return ref.subscription_id.casefold(), ref.resource_group.casefold(), ref.name.casefold()

    return key(a) == key(b)


def _requested_ref(body: dict[str, Any], requested: ServerRef) -> ServerRef | str:
    """The GET's server: what was requested, in ARM's casing when the body's id agrees.

    A body without an id is the requested server; a body whose id names another resource is
    not audited (its settings may be another server's): the reason is returned instead.
    """
    raw_id = body.get("id")
    if raw_id is None:
        return requested
    answered = _parse_server_id(raw_id)
    if answered is None or not _same_server(answered, requested):
        return (
            f"ARM answered the GET of server {requested.name} with the body of another "
            f"resource (id {_shown_id(raw_id)}): not audited"
        )
    return answered


def _listed_ref(body: dict[str, Any], request: AzureRequest, answer: str) -> ServerRef | str:
    """A listed server, identified by its id alone; the reason when it cannot be audited.

    The id must be a flexible server inside the scope asked for (subscriptions, resource group,
    names): an answer naming a server elsewhere would otherwise send child GETs (with the
    token) there. ``answer`` names the list or query, for the reason.
    """
    raw_id = body.get("id")
    ref = _parse_server_id(raw_id)
    if ref is None:
        return (
            f"{answer} has an entry whose id is not a flexible server id ({_shown_id(raw_id)}): "
            f"not audited"
        )
    subscriptions = {s.casefold() for s in request.subscription_ids}
    names = {n.casefold() for n in request.names}
    inside = (
        (not subscriptions or ref.subscription_id.casefold() in subscriptions)
        and (
            request.resource_group is None
            or ref.resource_group.casefold() == request.resource_group.casefold()
        )
        and (not names or ref.name.casefold() in names)
    )
    if not inside:
        return f"{answer} named {_shown_id(ref.id)}, which is outside that scope: not audited"
    return ref


def _has_tag(body: dict[str, Any], tag: tuple[str, str]) -> bool:
    # Tag names are case-insensitive in ARM; values are matched case-insensitively too, so a
    # server tagged "Prod" is audited rather than silently skipped.
    tags = dig(body, "tags")
    if not isinstance(tags, dict):
        return False
    key, value = (part.casefold() for part in tag)
    return any(
        str(name).casefold() == key and str(found).casefold() == value
        for name, found in tags.items()
    )


def _issue(resource: str, part: str | None, reason: str) -> CollectionIssue:
    return CollectionIssue(source=Source.AZURE, resource=resource, part=part, reason=reason)


def _issue_order(issue: CollectionIssue) -> tuple[str, str, str]:
    return (issue.resource.casefold(), issue.part or "", issue.reason)


class _Progress:
    """Servers done, reads sent, time waiting for a budget, time left: one status line on a
    terminal (``collectors.progress``), nothing in CI logs and pipes."""

    def __init__(self, *, enabled: bool) -> None:
        self.line = StatusLine(enabled=enabled)
        self.enabled = self.line.enabled

    def show(self, *, done: int, total: int, reads: int, waited: float, left: float | None) -> None:
        estimate = f", ~{left:.0f} s left" if left is not None and done < total else ""
        self.line.show(
            f"Azure: {done}/{total} servers, {reads} ARM reads, "
            f"{waited:.1f} s waiting for the read budget{estimate}",
            force=done >= total,
        )

    def done(self) -> None:
        self.line.done()
