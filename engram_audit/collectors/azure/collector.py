"""Live Azure collector: flexible servers and everything the ``azure.*`` checks read, via ARM.

Read-only and confined to the ARM endpoint (``pipeline.ReadOnlyGuardPolicy`` refuses anything
else before it is sent), concurrent (a bounded pool runs every request of every server), and
bounded in time: ``timeout_seconds`` is a deadline for the whole run, signing in included.
Whatever could not be read becomes a ``CollectionIssue`` naming the resource, the part (the
``AzureServer`` field left ``None``) and the reason; so does a discovery that finds no server,
unless ``allow_empty``. Only "cannot even start" problems raise ``AzureCollectionError``
(``AzureTargetError`` when the settings are wrong).
"""

from __future__ import annotations

import queue
import re
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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
from engram_audit.collectors.azure.parts import (
    METRIC_ALERTS_PERMISSION,
    PARTS,
    SERVER_PERMISSION,
    Part,
    ServerRef,
    read_metric_alerts,
)
from engram_audit.collectors.azure.pipeline import Budget, BudgetExhausted
from engram_audit.collectors.azure.request import MAX_CONCURRENCY, AzureRequest, no_server_found
from engram_audit.model.base import Source
from engram_audit.model.snapshot import AzureSection, AzureServer, CollectionIssue, MetricAlert
from engram_audit.model.values import dig

__all__ = [
    "AzureCollection",
    "AzureCollectionError",
    "AzureRequest",
    "AzureTargetError",
    "collect_azure",
]

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_SERVER_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)"
    r"/providers/microsoft\.dbforpostgresql/flexibleservers/(?P<name>[^/]+)/?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class AzureCollection:
    section: AzureSection
    issues: tuple[CollectionIssue, ...]
    requests_sent: int = 0


def collect_azure(request: AzureRequest, *, show_progress: bool) -> AzureCollection:
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
        subscription_id=request.subscription_id,
        target=target,
        credential=credential,
        budget=budget,
        concurrency=request.concurrency,
        verify=verify,
    )
    try:
        progress = _Progress(enabled=show_progress and sys.stderr.isatty())
        return _Run(request, clients, budget, secret, progress).execute()
    finally:
        clients.close()


def _validate(request: AzureRequest) -> None:
    if not _GUID.match(request.subscription_id):
        raise AzureTargetError(
            f"subscription id must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), "
            f"got {request.subscription_id[:60]!r}"
        )
    if request.server_name and not request.resource_group:
        raise AzureTargetError("a server name needs its resource group")
    if not 1 <= request.concurrency <= MAX_CONCURRENCY:
        raise AzureTargetError(
            f"concurrency must be between 1 and {MAX_CONCURRENCY}, got {request.concurrency}"
        )
    if not request.timeout_seconds > 0:
        raise AzureTargetError(f"timeout must be positive, got {request.timeout_seconds:g}")


def server_id(subscription: str, group: str, name: str) -> str:
    return (
        f"/subscriptions/{subscription}/resourceGroups/{group}"
        f"/providers/Microsoft.DBforPostgreSQL/flexibleServers/{name}"
    )


# --- one run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Targets:
    """Task: find the servers (one GET, or a listing filtered by tag)."""


@dataclass(frozen=True)
class _Alerts:
    """Task: the subscription's metric alerts, read once for all servers."""


@dataclass(frozen=True)
class _PartOf:
    server: ServerRef
    part: Part


_Task = _Targets | _Alerts | _PartOf


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
    values: dict[str, Any] = field(default_factory=dict)
    outstanding: int = len(PARTS)


class _Run:
    def __init__(
        self,
        request: AzureRequest,
        clients: ArmClients,
        budget: Budget,
        secret: str | None,
        progress: _Progress,
    ) -> None:
        self.request = request
        self.clients = clients
        self.budget = budget
        self.secret = secret
        self.progress = progress
        self.found: dict[str, _Found] = {}
        self.done_servers = 0
        self.alerts: tuple[MetricAlert, ...] | None = None
        self.alerts_failure: str | None = None
        self.issues: list[CollectionIssue] = []
        self.pending: dict[Future[Any], _Task] = {}
        self.finished: queue.Queue[Future[Any]] = queue.Queue()
        self.pool = ThreadPoolExecutor(
            max_workers=request.concurrency, thread_name_prefix="engram-audit-arm"
        )

    def execute(self) -> AzureCollection:
        request = self.request
        try:
            self._submit(_Targets(), self._find_servers)
            self._submit(
                _Alerts(), lambda: read_metric_alerts(self.clients, request.subscription_id)
            )
            while self.pending:
                remaining = self.budget.remaining()
                if remaining <= 0:
                    break
                try:
                    future = self.finished.get(timeout=remaining)
                except queue.Empty:
                    break
                self._settle(self.pending.pop(future), future)
                self.progress.show(
                    self._servers_done(), len(self.found), self.clients.counter.count
                )
            for task in self.pending.values():
                self._fail(task, BudgetExhausted(self._ran_out()))
        finally:
            # Running requests end by themselves: their timeouts are capped by the deadline.
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.progress.done()
        servers = self._servers()
        return AzureCollection(
            section=AzureSection(servers=servers),
            issues=tuple(sorted(self.issues, key=_issue_order)),
            requests_sent=self.clients.counter.count,
        )

    def _ran_out(self) -> str:
        return f"the {self.budget.total_seconds:g} s --timeout ran out"

    def _submit(self, task: _Task, work: Callable[[], Any]) -> None:
        future = self.pool.submit(work)
        self.pending[future] = task
        # A completion queue keeps the main loop O(1) per finished request, whatever the fleet.
        future.add_done_callback(self.finished.put)

    # --- finding servers ------------------------------------------------------------------

    def _find_servers(self) -> _Discovery:
        """The servers to audit, each identified by its ARM id (or by what was requested).

        The body's ``name`` is never used to address or label a server: a hostile answer whose
        ``name`` disagrees with its ``id`` must not redirect the child GETs to another server.
        """
        request, servers = self.request, self.clients.postgres.servers
        if request.server_name and request.resource_group:
            body = servers.get(request.resource_group, request.server_name).as_dict()
            requested = ServerRef(
                id=server_id(request.subscription_id, request.resource_group, request.server_name),
                subscription_id=request.subscription_id,
                resource_group=request.resource_group,
                name=request.server_name,
            )
            ref = _requested_ref(body, requested)
            if isinstance(ref, str):
                return _Discovery(rejected=(_issue(requested.id, None, ref),), listed=1)
            return _Discovery(found=((ref, body),), listed=1)
        listing = (
            servers.list_by_resource_group(request.resource_group)
            if request.resource_group
            else servers.list_by_subscription()
        )
        scope = self._scope()
        found: list[tuple[ServerRef, dict[str, Any]]] = []
        rejected: list[CollectionIssue] = []
        listed = 0
        for server in listing:
            listed += 1
            body = server.as_dict()
            if request.tag is not None and not _has_tag(body, request.tag):
                continue
            ref = _listed_ref(body, request, scope)
            if isinstance(ref, str):
                rejected.append(_issue(scope, None, ref))
            else:
                found.append((ref, body))
        return _Discovery(tuple(found), tuple(rejected), listed)

    def _scope(self) -> str:
        request = self.request
        if request.server_name and request.resource_group:
            return server_id(request.subscription_id, request.resource_group, request.server_name)
        if request.resource_group:
            return (
                f"/subscriptions/{request.subscription_id}/resourceGroups/{request.resource_group}"
            )
        return f"/subscriptions/{request.subscription_id}"

    # --- results ------------------------------------------------------------------------

    def _settle(self, task: _Task, future: Future[Any]) -> None:
        error = future.exception()
        if error is not None:
            self._fail(task, error)
            return
        result = future.result()
        if isinstance(task, _Targets):
            self.issues.extend(result.rejected)
            if not result.found and not result.rejected and not self.request.allow_empty:
                self.issues.append(self._empty_issue(result.listed))
            for ref, body in result.found:
                if ref.id.casefold() in self.found:
                    continue
                self.found[ref.id.casefold()] = _Found(ref, body)
                for part in PARTS:
                    self._submit(_PartOf(ref, part), _bind(part, self.clients, ref))
        elif isinstance(task, _Alerts):
            self.alerts = result
        else:
            entry = self.found[task.server.id.casefold()]
            entry.values[task.part.field] = result
            self._part_settled(entry)

    def _fail(self, task: _Task, error: BaseException) -> None:
        if isinstance(task, _Alerts):
            self.alerts_failure = describe_failure(
                error,
                what="metric alerts",
                resource=f"/subscriptions/{self.request.subscription_id}",
                permission=METRIC_ALERTS_PERMISSION,
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
        if request.tag is not None and listed:
            found = f": {listed} listed, none with that tag"
        else:
            found = ": ARM listed none"
        return _issue(
            self._scope(),
            None,
            f"{no_server_found(request)}{found} (give --allow-empty if that is expected)",
        )

    def _target_issue(self, error: BaseException) -> CollectionIssue:
        request = self.request
        code = (arm_error_code(error) or "").casefold()
        subscription = f"/subscriptions/{request.subscription_id}"
        if code == "subscriptionnotfound":
            return _issue(subscription, None, f"subscription {request.subscription_id} not found")
        if code == "resourcegroupnotfound" and request.resource_group:
            group = f"{subscription}/resourceGroups/{request.resource_group}"
            return _issue(
                group,
                None,
                f"resource group {request.resource_group} not found in subscription "
                f"{request.subscription_id}",
            )
        scope = self._scope()
        if getattr(error, "status_code", None) == 404 and request.server_name:
            return _issue(
                scope,
                None,
                f"server {request.server_name} not found in resource group "
                f"{request.resource_group} of subscription {request.subscription_id}",
            )
        what = "server" if request.server_name else "flexible servers list"
        reason = describe_failure(
            error, what=what, resource=scope, permission=SERVER_PERMISSION, secret=self.secret
        )
        return _issue(scope, None, reason)

    def _part_settled(self, entry: _Found) -> None:
        entry.outstanding -= 1
        if entry.outstanding == 0:
            self.done_servers += 1

    def _servers_done(self) -> int:
        return self.done_servers

    def _servers(self) -> tuple[AzureServer, ...]:
        alerts_by_scope = _by_scope(self.alerts) if self.alerts is not None else None
        servers: list[AzureServer] = []
        for entry in sorted(self.found.values(), key=lambda e: e.ref.id.casefold()):
            ref = entry.ref
            covering: tuple[MetricAlert, ...] | None = None
            if alerts_by_scope is not None:
                covering = _covering(alerts_by_scope, ref.id)
            else:
                self.issues.append(
                    _issue(ref.id, "metric_alerts", self.alerts_failure or self._ran_out())
                )
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


def _listed_ref(body: dict[str, Any], request: AzureRequest, scope: str) -> ServerRef | str:
    """A listed server, identified by its id alone; the reason when it cannot be audited.

    The id must be a flexible server inside the listed scope: a list answer naming a server of
    another subscription or group would otherwise send child GETs (with the token) there.
    """
    raw_id = body.get("id")
    ref = _parse_server_id(raw_id)
    if ref is None:
        return (
            f"the flexible servers list of {scope} has an entry whose id is not a flexible "
            f"server id ({_shown_id(raw_id)}): not audited"
        )
    inside = ref.subscription_id.casefold() == request.subscription_id.casefold() and (
        request.resource_group is None
        or ref.resource_group.casefold() == request.resource_group.casefold()
    )
    if not inside:
        return (
            f"the flexible servers list of {scope} named {_shown_id(ref.id)}, which is outside "
            f"that scope: not audited"
        )
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
    """A one-line counter on stderr, only for a terminal; silent in CI logs and pipes."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._shown = False

    def show(self, done: int, total: int, requests: int) -> None:
        if not self.enabled:
            return
        sys.stderr.write(f"\rAzure: {done}/{total} servers read, {requests} ARM requests ")
        sys.stderr.flush()
        self._shown = True

    def done(self) -> None:
        if self.enabled and self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
