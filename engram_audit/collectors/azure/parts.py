"""One reader per part of a server: one ARM list in, snapshot model types out.

Each reader fills exactly one ``AzureServer`` field and issues GETs only, on the SDK's pipeline
(``send_request``: the read-only guard, pacing, retries) but without its models: the wire JSON
(ARM's camelCase) is read with ``model.values.dig`` so odd key casing and unexpected value types
come through as ARM sent them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from azure.core.rest import HttpRequest

from engram_audit.collectors.azure.clients import (
    DIAGNOSTIC_SETTINGS_API_VERSION,
    METRIC_ALERTS_API_VERSION,
    POSTGRES_API_VERSION,
    ArmClients,
)
from engram_audit.collectors.azure.errors import UnreadableAnswer, json_answer
from engram_audit.model.snapshot import (
    AlertCriterion,
    Backup,
    EntraAdministrator,
    FirewallRule,
    MetricAlert,
    ServerParameter,
)
from engram_audit.model.values import as_bool, as_float, as_int, dig

_FLEX = "Microsoft.DBforPostgreSQL/flexibleServers"
SERVER_PERMISSION = f"{_FLEX}/read"
METRIC_ALERTS_PERMISSION = "Microsoft.Insights/metricAlerts/read"


@dataclass(frozen=True)
class ServerRef:
    """A server as requested or as its ARM id names it; never as a body's ``name`` says."""

    id: str
    subscription_id: str
    resource_group: str
    name: str


Reader = Callable[[ArmClients, ServerRef], Any]


@dataclass(frozen=True)
class Part:
    field: str
    what: str
    permission: str
    read: Reader


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _children(clients: ArmClients, ref: ServerRef, child: str) -> Iterator[dict[str, Any]]:
    """Every item of one of the server's child lists (``configurations``, ``firewallRules``,
    ...), page by page, as wire JSON.

    The same GET the SDK's ``<operations>.list_by_server`` sends (its path, ``POSTGRES_API_VERSION``)
    on the same read-only pipeline, without the SDK's models: building them and turning them
    back into dicts (``as_dict``) cost ~5 ms of CPU per server for the ~430 parameters alone,
    most of the collector's CPU in a fleet (README, "Fleet speed"), for the same camelCase JSON.
    """
    return raw_list(
        clients, ref.subscription_id, f"{_server_path(ref)}/{child}", POSTGRES_API_VERSION
    )


def _name(item: dict[str, Any]) -> str:
    name = item.get("name")
    return "" if name is None else str(name)


def read_parameters(clients: ArmClients, ref: ServerRef) -> dict[str, ServerParameter]:
    # One paged list for all ~430 parameters; never one GET per parameter.
    parameters: dict[str, ServerParameter] = {}
    for item in _children(clients, ref, "configurations"):
        name = item.get("name")
        if not isinstance(name, str):
            continue
        properties = dig(item, "properties")  # once: ~430 parameters a server
        parameters[name] = ServerParameter(
            value=_text(dig(properties, "value")),
            default_value=_text(dig(properties, "defaultValue")),
            data_type=_text(dig(properties, "dataType")),
            allowed_values=_text(dig(properties, "allowedValues")),
            source=_text(dig(properties, "source")),
        )
    return parameters


def read_firewall_rules(clients: ArmClients, ref: ServerRef) -> tuple[FirewallRule, ...]:
    return tuple(
        FirewallRule(
            name=_name(item),
            start_ip_address=str(dig(item, "properties", "startIpAddress") or ""),
            end_ip_address=str(dig(item, "properties", "endIpAddress") or ""),
        )
        for item in _children(clients, ref, "firewallRules")
    )


def read_backups(clients: ArmClients, ref: ServerRef) -> tuple[Backup, ...]:
    return tuple(
        Backup(
            name=_name(item),
            backup_type=_text(dig(item, "properties", "backupType")),
            completed_time=_timestamp(dig(item, "properties", "completedTime")),
            source=_text(dig(item, "properties", "source")),
        )
        for item in _children(clients, ref, "backups")
    )


def read_databases(clients: ArmClients, ref: ServerRef) -> tuple[str, ...]:
    return tuple(_name(item) for item in _children(clients, ref, "databases"))


def read_administrators(clients: ArmClients, ref: ServerRef) -> tuple[EntraAdministrator, ...]:
    return tuple(
        EntraAdministrator(
            object_id=_text(dig(item, "properties", "objectId")),
            principal_name=_text(dig(item, "properties", "principalName")),
            principal_type=_text(dig(item, "properties", "principalType")),
            tenant_id=_text(dig(item, "properties", "tenantId")),
        )
        for item in _children(clients, ref, "administrators")
    )


def read_private_endpoint_connections(
    clients: ArmClients, ref: ServerRef
) -> tuple[dict[str, Any], ...]:
    return tuple(_children(clients, ref, "privateEndpointConnections"))


def read_replicas(clients: ArmClients, ref: ServerRef) -> tuple[str, ...]:
    return tuple(
        str(item.get("id") or item.get("name") or "")
        for item in _children(clients, ref, "replicas")
    )


def read_threat_protection_state(clients: ArmClients, ref: ServerRef) -> str:
    settings = list(_children(clients, ref, "advancedThreatProtectionSettings"))
    default = next(
        (s for s in settings if _name(s).casefold() == "default"),
        settings[0] if settings else None,
    )
    # ARM lists the "Default" setting even when protection is off; none at all means off too.
    state = dig(default, "properties", "state") if default is not None else None
    return "Disabled" if state is None else str(state)


def read_diagnostic_settings(clients: ArmClients, ref: ServerRef) -> tuple[dict[str, Any], ...]:
    # azure-mgmt-monitor 7 has no diagnostic-settings operations: plain GETs on the same
    # read-only pipeline instead.
    path = f"{_server_path(ref)}/providers/Microsoft.Insights/diagnosticSettings"
    return tuple(raw_list(clients, ref.subscription_id, path, DIAGNOSTIC_SETTINGS_API_VERSION))


def _server_path(ref: ServerRef) -> str:
    """The server's path, each name quoted like the SDK quotes path arguments."""
    return (
        f"/subscriptions/{quote(ref.subscription_id, safe='')}"
        f"/resourceGroups/{quote(ref.resource_group, safe='')}"
        f"/providers/{_FLEX}/{quote(ref.name, safe='')}"
    )


def read_metric_alerts(clients: ArmClients, subscription_id: str) -> tuple[MetricAlert, ...]:
    """Every metric alert of the subscription, once; servers keep those whose scope covers them.

    Read as wire JSON rather than through azure-mgmt-monitor's models: its deserialiser rejects
    the whole list over one field we never use (the official example's ``"windowSize": "Pt15m"``
    duration), which would turn every server's alerts into a collection error.
    """
    path = f"/subscriptions/{subscription_id}/providers/Microsoft.Insights/metricAlerts"
    return tuple(
        metric_alert(item)
        for item in raw_list(clients, subscription_id, path, METRIC_ALERTS_API_VERSION)
    )


class UnexpectedList(UnreadableAnswer):
    """An ARM list answer that is not ``{"value": [...]}`` where one is required."""


def raw_list(
    clients: ArmClients,
    subscription_id: str,
    path: str,
    api_version: str,
) -> Iterator[dict[str, Any]]:
    """GET an ARM list and its pages, following ``nextLink`` as ARM gives it.

    A link to any other scheme, host or port is refused by the pipeline's ``ReadOnlyGuardPolicy``
    before anything is sent, which fails this part with an issue naming that host. A page that
    is not an object with a ``value`` list of objects, or a ``nextLink`` back to a page already
    read, raises ``UnexpectedList``: "nothing listed" (no firewall rule, no alert) is an answer
    a check reads, so a broken page must never be read as an empty one.
    """
    client = clients.postgres(subscription_id)
    url: str | None = f"{clients.endpoint}{path}"
    params: dict[str, str] = {"api-version": api_version}
    followed: set[str] = set()
    while url:
        response = client.send_request(HttpRequest("GET", url, params=params))
        body = json_answer(response, UnexpectedList(f"ARM's answer to GET {path} is not JSON"))
        if not _is_list_page(body):
            raise UnexpectedList(f"ARM's answer to GET {path} is not a list of objects")
        yield from body["value"]
        link = body.get("nextLink")
        if link is not None and not isinstance(link, str):
            raise UnexpectedList(f"ARM's answer to GET {path} has a nextLink that is not a URL")
        if link and link in followed:
            raise UnexpectedList(f"ARM's pages of GET {path} link back to a page already read")
        if link:
            followed.add(link)
        url, params = (link or None), {}


def _is_list_page(body: Any) -> bool:
    value = body.get("value") if isinstance(body, dict) else None
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def metric_alert(item: dict[str, Any]) -> MetricAlert:
    """A metric alert from its wire JSON (an ARM list item or a Resource Graph row)."""
    enabled = as_bool(dig(item, "properties", "enabled"))
    severity = as_int(dig(item, "properties", "severity"))
    scopes = dig(item, "properties", "scopes") or ()
    actions = dig(item, "properties", "actions") or ()
    return MetricAlert(
        id=str(item.get("id") or ""),
        name=str(item.get("name") or str(item.get("id") or "").rsplit("/", 1)[-1]),
        enabled=True if enabled is None else enabled,
        severity=severity,
        scopes=tuple(str(scope) for scope in scopes if isinstance(scope, str)),
        criteria=tuple(_criteria(dig(item, "properties", "criteria"))),
        action_groups=tuple(
            str(group)
            for action in actions
            if isinstance(action, dict) and (group := dig(action, "actionGroupId"))
        ),
    )


def _criteria(criteria: Any) -> Iterator[AlertCriterion]:
    # Single- and multi-resource criteria both list conditions in allOf; dynamic thresholds
    # have no static threshold; web-test criteria have no metric conditions at all.
    conditions = dig(criteria, "allOf") or ()
    for condition in conditions:
        metric_name = dig(condition, "metricName")
        if not metric_name:
            continue
        yield AlertCriterion(
            metric_name=str(metric_name),
            operator=_text(dig(condition, "operator")),
            threshold=as_float(dig(condition, "threshold")),
            time_aggregation=_text(dig(condition, "timeAggregation")),
            metric_namespace=_text(dig(condition, "metricNamespace")),
        )


PARTS: tuple[Part, ...] = (
    Part("parameters", "server parameters", f"{_FLEX}/configurations/read", read_parameters),
    Part("firewall_rules", "firewall rules", f"{_FLEX}/firewallRules/read", read_firewall_rules),
    Part("backups", "backups", f"{_FLEX}/backups/read", read_backups),
    Part("databases", "databases", f"{_FLEX}/databases/read", read_databases),
    Part(
        "administrators",
        "Entra administrators",
        f"{_FLEX}/administrators/read",
        read_administrators,
    ),
    Part(
        "private_endpoint_connections",
        "private endpoint connections",
        f"{_FLEX}/privateEndpointConnections/read",
        read_private_endpoint_connections,
    ),
    Part("replicas", "replicas", f"{_FLEX}/replicas/read", read_replicas),
    Part(
        "threat_protection_state",
        "advanced threat protection",
        f"{_FLEX}/advancedThreatProtectionSettings/read",
        read_threat_protection_state,
    ),
    Part(
        "diagnostic_settings",
        "diagnostic settings",
        "Microsoft.Insights/diagnosticSettings/read",
        read_diagnostic_settings,
    ),
)
