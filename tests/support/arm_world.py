"""The emulator's content: ARM resources and lists, built from fixture documents.

A world document (``fixtures/arm/*.json``) looks like::

    {
      "subscriptionId": "...",
      "servers": [
        {"server": {...flexibleServers body with its id...},
         "configurations": [...], "firewallRules": [...], "backups": [...],
         "databases": [...], "administrators": [...], "privateEndpointConnections": [...],
         "replicas": [...], "advancedThreatProtectionSettings": [...],
         "diagnosticSettings": [...]}
      ],
      "metricAlerts": [...],
      "pages": [{"path": "...", "skiptoken": null, "body": {...}}]
    }

Each child list becomes the collection under the server's id (paged by ``page_size``), and
every item with an ``id`` can also be read on its own. A child given as ``{"pages": [body,
...]}`` is served page by page verbatim (official examples carry a ``nextLink`` to the real ARM
host; the emulator rewrites it to itself and serves the next page under its ``$skiptoken``).
Lookups are case-insensitive, like ARM's.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from engram_audit.checks.azure.catalogue import parameter_catalogue
from engram_audit.model.snapshot import AzureServer, MetricAlert
from engram_audit.model.values import fold
from tests.support.resource_graph import alert_row, server_row

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "fixtures" / "arm"
OFFICIAL = FIXTURES / "official"

PROVIDER = "/providers/Microsoft.DBforPostgreSQL/flexibleServers"

# Fixture key -> path segment under the server id.
CHILDREN: dict[str, str] = {
    "configurations": "/configurations",
    "firewallRules": "/firewallRules",
    "backups": "/backups",
    "databases": "/databases",
    "administrators": "/administrators",
    "privateEndpointConnections": "/privateEndpointConnections",
    "replicas": "/replicas",
    "advancedThreatProtectionSettings": "/advancedThreatProtectionSettings",
    "diagnosticSettings": "/providers/Microsoft.Insights/diagnosticSettings",
}

_SERVER_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)"
    r"/providers/microsoft\.dbforpostgresql/flexibleservers/(?P<name>[^/]+)",
    re.IGNORECASE,
)


def normalise_path(path: str) -> str:
    return re.sub(r"/{2,}", "/", path).rstrip("/").casefold()


@dataclass(frozen=True)
class Lookup:
    status: int
    body: dict[str, Any]
    code: str | None = None
    message: str | None = None


class ArmWorld:
    def __init__(self, *, page_size: int) -> None:
        self.page_size = page_size
        self._resources: dict[str, dict[str, Any]] = {}
        self._lists: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        self._pages: dict[tuple[str, str | None], dict[str, Any]] = {}
        self._subscriptions: set[str] = set()
        self._groups: set[str] = set()
        # Resource Graph's ``resources`` table (tests.support.resource_graph): the servers' and
        # metric alerts' bodies as rows.
        self.graph_rows: list[dict[str, Any]] = []

    # --- building -----------------------------------------------------------------------

    def add_document(self, document: dict[str, Any]) -> None:
        subscription = document.get("subscriptionId")
        if subscription:
            self.add_subscription(subscription)
        for bundle in document.get("servers", []):
            self.add_server(bundle)
        if subscription and "metricAlerts" in document:
            self.add_metric_alerts(subscription, document["metricAlerts"])
        for page in document.get("pages", []):
            self.add_page(page["path"], page.get("skiptoken"), page["body"])

    def add_subscription(self, subscription: str) -> None:
        self._subscriptions.add(subscription.casefold())
        alerts = f"/subscriptions/{subscription}/providers/Microsoft.Insights/metricAlerts"
        self._lists.setdefault(normalise_path(alerts), (alerts, []))
        servers = f"/subscriptions/{subscription}{PROVIDER}"
        self._lists.setdefault(normalise_path(servers), (servers, []))

    def add_group(self, subscription: str, group: str) -> None:
        self.add_subscription(subscription)
        group_id = f"/subscriptions/{subscription}/resourceGroups/{group}"
        self._groups.add(normalise_path(group_id))
        servers = f"{group_id}{PROVIDER}"
        self._lists.setdefault(normalise_path(servers), (servers, []))

    def add_server(self, bundle: dict[str, Any]) -> None:
        server = bundle["server"]
        server_id: str = server["id"]
        match = _SERVER_ID.match(server_id)
        if match is None:
            raise ValueError(f"not a flexible server id: {server_id}")
        subscription, group = match["sub"], match["rg"]
        self.add_group(subscription, group)
        self._resources[normalise_path(server_id)] = server
        self.graph_rows.append(server_row(server))
        for listing in (
            f"/subscriptions/{subscription}{PROVIDER}",
            f"/subscriptions/{subscription}/resourceGroups/{group}{PROVIDER}",
        ):
            self._lists[normalise_path(listing)][1].append(server)
        for key, segment in CHILDREN.items():
            child = bundle.get(key, [])
            path = f"{server_id}{segment}"
            if isinstance(child, dict) and "pages" in child:
                self.add_pages(path, child["pages"])
            else:
                self.add_list(path, child)

    def add_metric_alerts(self, subscription: str, alerts: list[dict[str, Any]]) -> None:
        self.add_subscription(subscription)
        path = f"/subscriptions/{subscription}/providers/Microsoft.Insights/metricAlerts"
        self._lists[normalise_path(path)][1].extend(alerts)
        self.graph_rows.extend(alert_row(alert) for alert in alerts)

    def add_list(self, path: str, items: list[dict[str, Any]]) -> None:
        self._lists[normalise_path(path)] = (path, list(items))
        for item in items:
            if isinstance(item.get("id"), str):
                self._resources.setdefault(normalise_path(item["id"]), item)

    def add_pages(self, path: str, pages: list[dict[str, Any]]) -> None:
        """Serve ``pages`` verbatim, each under the ``$skiptoken`` the previous nextLink names.

        A token already used for this list (the examples all say ``skiptoken``) is replaced by a
        fresh one, so every page stays reachable.
        """
        token: str | None = None
        used: set[str | None] = {None}
        for index, page in enumerate(pages):
            body = dict(page)
            next_token: str | None = None
            if index + 1 < len(pages):
                link = body.get("nextLink") or f"https://management.azure.com{path}"
                next_token = _skiptoken(link)
                if next_token in used:
                    next_token = f"page{index + 1}"
                    link = _with_skiptoken(link, next_token)
                used.add(next_token)
                body["nextLink"] = link
            else:
                body.pop("nextLink", None)
            self.add_page(path, token, body)
            for item in body.get("value", []):
                if isinstance(item.get("id"), str):
                    self._resources.setdefault(normalise_path(item["id"]), item)
            token = next_token

    def add_page(self, path: str, skiptoken: str | None, body: dict[str, Any]) -> None:
        self._pages[(normalise_path(path), skiptoken)] = body

    def subscriptions(self) -> set[str]:
        return set(self._subscriptions)

    # --- writing (only through a writable emulator) --------------------------------------

    def write(self, method: str, path: str, body: dict[str, Any]) -> Lookup:
        """Apply a PUT, PATCH or DELETE to the resource at ``path`` (as sent, any case).

        A plain resource store, not Azure's behaviour: PATCH merges the body into the resource
        (objects key by key, anything else replaced); PUT does the same on an existing resource
        (read-only properties such as a configuration's ``dataType`` stay, as the service
        computes them) and creates a missing one under an existing parent, listed where its
        siblings are; DELETE removes it (204 when there is nothing to delete). Nothing else
        happens: no standby is built, no restart applies anything.
        """
        key = normalise_path(path)
        resource = self._resources.get(key)
        if method == "DELETE":
            if resource is None:
                return Lookup(204, {})
            del self._resources[key]
            for _, items in self._lists.values():
                items[:] = [item for item in items if normalise_path(str(item.get("id"))) != key]
            self.graph_rows[:] = [
                row for row in self.graph_rows if normalise_path(str(row.get("id"))) != key
            ]
            return Lookup(200, {})
        if resource is not None:
            refused = _refused_value(resource, body)
            if refused:
                return Lookup(400, {}, "InvalidParameterValue", refused)
            _merge(resource, body)
            if key.rsplit("/", 2)[-2] == "configurations":
                self._relist_switched(key.rsplit("/", 2)[0])
            return Lookup(200, resource)
        if method == "PATCH":
            return self._not_found(key)
        parent = key.rsplit("/", 2)[0]
        if not self._parent_exists(parent):
            return self._not_found(key)
        created: dict[str, Any] = {
            "id": path.rstrip("/"),
            "name": path.rstrip("/").rsplit("/", 1)[-1],
            "type": resource_type(path),
            **{k: v for k, v in body.items() if k not in ("id", "name", "type")},
        }
        self._resources[key] = created
        collection = key.rsplit("/", 1)[0]
        if collection in self._lists:
            self._lists[collection][1].append(created)
        if created["type"].casefold() == "microsoft.insights/metricalerts":
            subscription = path.split("/")[2]
            self.add_metric_alerts(subscription, [])
            alerts = f"/subscriptions/{subscription}/providers/Microsoft.Insights/metricAlerts"
            self._lists[normalise_path(alerts)][1].append(created)
            self.graph_rows.append(alert_row(created))
        return Lookup(201, created)

    def _relist_switched(self, server_key: str) -> None:
        """Keep a server's configuration list as Azure lists it after a switch changes: a
        parameter listed only while another has a value (``pgbouncer.*`` while
        ``pgbouncer.enabled`` is true: the catalogue's ``listed_only_when``, from Microsoft's
        tables) appears with Azure's default for the server's major version, or disappears."""
        server = self._resources.get(server_key)
        listing = self._lists.get(f"{server_key}/configurations")
        if server is None or listing is None:
            return
        original, items = listing
        major = str((server.get("properties") or {}).get("version") or "").split(".")[0]
        values = {
            str(item.get("name", "")).casefold(): str((item.get("properties") or {}).get("value"))
            for item in items
        }
        for facts in parameter_catalogue().parameters.values():
            condition, row = facts.listed_only_when, facts.on(major)
            if condition is None or row is None or not row.exists or row.default is None:
                continue
            on = fold(values.get(condition.parameter.casefold(), "")) == fold(condition.value)
            listed = facts.name.casefold() in values
            child_id = f"{original}/{facts.name}"
            if on and not listed:
                child = _child(
                    original.rsplit("/", 1)[0],
                    "configurations",
                    facts.name,
                    {
                        "value": row.default,
                        "defaultValue": row.default,
                        "dataType": facts.arm_data_type,
                        "allowedValues": row.allowed,
                        "source": "system-default",
                    },
                )
                items.append(child)
                self._resources[normalise_path(child_id)] = child
            elif listed and not on:
                items[:] = [
                    i for i in items if str(i.get("name", "")).casefold() != facts.name.casefold()
                ]
                self._resources.pop(normalise_path(child_id), None)

    def _parent_exists(self, parent: str) -> bool:
        """A resource or resource group, also behind an extension's ``/providers/<namespace>``
        (a metric alert in a group, a diagnostic setting on a server)."""
        base = re.sub(r"/providers/[^/]+$", "", parent)
        return parent in self._resources or base in self._resources or base in self._groups

    def exists(self, path: str) -> bool:
        return normalise_path(path) in self._resources

    # --- serving ------------------------------------------------------------------------

    def lookup(self, path: str, skiptoken: str | None) -> Lookup:
        page = self._pages.get((path, skiptoken))
        if page is not None:
            return Lookup(200, page)
        if skiptoken is None and path in self._resources:
            return Lookup(200, self._resources[path])
        if path in self._lists:
            return self._page_of(path, skiptoken)
        return self._not_found(path)

    def _page_of(self, path: str, skiptoken: str | None) -> Lookup:
        original, items = self._lists[path]
        index = 0
        if skiptoken is not None:
            if not skiptoken.startswith("page") or not skiptoken[4:].isdigit():
                return Lookup(400, {}, "InvalidSkipToken", f"Unknown $skiptoken {skiptoken!r}.")
            index = int(skiptoken[4:])
        start = index * self.page_size
        body: dict[str, Any] = {"value": items[start : start + self.page_size]}
        if start + self.page_size < len(items):
            body["nextLink"] = (
                f"https://management.azure.com{original}"
                f"?api-version=2025-08-01&$skiptoken=page{index + 1}"
            )
        return Lookup(200, body)

    def _not_found(self, path: str) -> Lookup:
        match = re.match(r"^/subscriptions/([^/]+)", path)
        if match and match[1] not in self._subscriptions:
            return Lookup(
                404,
                {},
                "SubscriptionNotFound",
                f"The subscription '{match[1]}' could not be found.",
            )
        group = re.match(r"^(/subscriptions/[^/]+/resourcegroups/([^/]+))", path)
        if group and group[1] not in self._groups:
            return Lookup(
                404, {}, "ResourceGroupNotFound", f"Resource group '{group[2]}' could not be found."
            )
        server = _SERVER_ID.match(path)
        parent = normalise_path(server[0]) if server else None
        if server and parent != path and parent not in self._resources:
            return Lookup(
                404,
                {},
                "ParentResourceNotFound",
                f"Can not perform requested operation on nested resource. Parent resource "
                f"'{server['name']}' not found.",
            )
        name = path.rsplit("/", 1)[-1]
        return Lookup(404, {}, "ResourceNotFound", f"The Resource '{name}' was not found.")


def _merge(target: dict[str, Any], patch: dict[str, Any], *, top: bool = True) -> None:
    """Merge ``patch`` into ``target`` in place (objects key by key), so every list and
    Resource Graph row that shares the resource's objects sees the change; a resource's own
    ``id``, ``name`` and ``type`` stay."""
    for key, value in patch.items():
        if top and key in ("id", "name", "type"):
            continue
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value, top=False)
        else:
            target[key] = copy.deepcopy(value)


def _refused_value(resource: dict[str, Any], body: dict[str, Any]) -> str:
    """Why a configuration's new value is outside the ``allowedValues`` it lists ("" if not).

    The emulator's own guard, so that a fix setting a value the server does not list fails:
    choices (Boolean, Enumeration, Set: each item) and ``low-high`` ranges, in any case.
    """
    if not str(resource.get("type", "")).casefold().endswith("/configurations"):
        return ""
    current = resource.get("properties") or {}
    value = (body.get("properties") or {}).get("value")
    allowed = str(current.get("allowedValues") or "").strip()
    kind = str(current.get("dataType") or "").casefold()
    if not isinstance(value, str) or not allowed:
        return ""
    if kind in ("integer", "numeric"):
        bounds = re.fullmatch(r"(-?\d+(?:\.\d+)?)-(-?\d+(?:\.\d+)?)", allowed.replace(" ", ""))
        try:
            number = float(value)
        except ValueError:
            return f"'{value}' is not a number"
        if bounds and not float(bounds[1]) <= number <= float(bounds[2]):
            return f"'{value}' is outside {allowed}"
        return ""
    if kind not in ("boolean", "enumeration", "set"):
        return ""
    choices = {item.strip().casefold() for item in allowed.split(",")}
    items = value.split(",") if kind == "set" else [value]
    outside = [item for item in items if item.strip().casefold() not in choices]
    if kind == "set" and value.strip() == "":
        outside = []
    return f"'{value}' is not among the allowed values {allowed}" if outside else ""


def resource_type(path: str) -> str:
    """``Namespace/type[/childtype...]`` from the last ``/providers/`` segment of an id."""
    tail = re.split(r"/providers/", path, flags=re.IGNORECASE)[-1].strip("/").split("/")
    return "/".join([tail[0], *tail[1::2]])


def _with_skiptoken(link: str, token: str) -> str:
    parts = urlsplit(link)
    query = [
        (key, value)
        for key, values in parse_qs(parts.query, keep_blank_values=True).items()
        for value in values
        if key.casefold() != "$skiptoken"
    ]
    query.append(("$skiptoken", token))
    return urlunsplit(parts._replace(query=urlencode(query, safe="$")))


def _skiptoken(link: str) -> str | None:
    for key, values in parse_qs(urlsplit(link).query).items():
        if key.casefold() == "$skiptoken" and values:
            return values[0]
    return None


# --- fixture loading -------------------------------------------------------------------------


def load_world(name: str) -> dict[str, Any]:
    """A world from ``fixtures/arm/<name>.json``."""
    document: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return document


def official_example(relative: str) -> dict[str, Any]:
    """One official REST example (``2025-08-01/ServersGet.json``), vendored under fixtures."""
    document: dict[str, Any] = json.loads((OFFICIAL / relative).read_text())
    return document


def example_body(relative: str, status: str = "200") -> dict[str, Any]:
    body: dict[str, Any] = official_example(relative)["responses"][status]["body"]
    return body


def official_server_examples() -> list[tuple[str, dict[str, Any]]]:
    """Every server body in the official examples: (label, body), bodies from GET, PUT and lists."""
    found: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(OFFICIAL.glob("20*/*.json")):
        document = json.loads(path.read_text())
        relative = f"{path.parent.name}/{path.name}"
        for status, response in document.get("responses", {}).items():
            body = response.get("body") or {}
            candidates = body.get("value", []) if "value" in body else [body]
            for index, candidate in enumerate(candidates):
                if _is_server_body(candidate):
                    found.append((f"{relative}#{status}[{index}]", candidate))
    return found


def _is_server_body(body: dict[str, Any]) -> bool:
    kind = str(body.get("type", "")).casefold()
    return kind == "microsoft.dbforpostgresql/flexibleservers" or (
        "sku" in body and isinstance(body.get("properties"), dict) and "type" not in body
    )


# --- worlds from snapshots -------------------------------------------------------------------


def world_from_servers(subscription_id: str, servers: list[AzureServer]) -> dict[str, Any]:
    """The ARM state a set of snapshot servers was collected from, as a world document.

    The inverse of the collector: collecting this world must give back the same servers, so
    the bundled snapshots double as ARM fixtures for every environment.
    """
    alerts: dict[str, dict[str, Any]] = {}
    for server in servers:
        for alert in server.metric_alerts or ():
            alerts.setdefault(alert.id.casefold(), _alert_body(alert))
    return {
        "subscriptionId": subscription_id,
        "servers": [_server_bundle(server) for server in servers],
        "metricAlerts": list(alerts.values()),
    }


def _child(server_id: str, kind: str, name: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"{server_id}/{kind}/{name}",
        "name": name,
        "type": f"Microsoft.DBforPostgreSQL/flexibleServers/{kind}",
        "properties": {key: value for key, value in properties.items() if value is not None},
    }


def _server_bundle(server: AzureServer) -> dict[str, Any]:
    sid = server.id
    return {
        "server": server.resource,
        "configurations": [
            _child(
                sid,
                "configurations",
                name,
                {
                    "value": p.value,
                    "defaultValue": p.default_value,
                    "dataType": p.data_type,
                    "allowedValues": p.allowed_values,
                    "source": p.source,
                },
            )
            for name, p in (server.parameters or {}).items()
        ],
        "firewallRules": [
            _child(
                sid,
                "firewallRules",
                rule.name,
                {"startIpAddress": rule.start_ip_address, "endIpAddress": rule.end_ip_address},
            )
            for rule in server.firewall_rules or ()
        ],
        "backups": [
            _child(
                sid,
                "backups",
                backup.name,
                {
                    "backupType": backup.backup_type,
                    "completedTime": backup.completed_time.isoformat()
                    if backup.completed_time
                    else None,
                    "source": backup.source,
                },
            )
            for backup in server.backups or ()
        ],
        "databases": [
            _child(sid, "databases", name, {"charset": "UTF8", "collation": "en_US.utf8"})
            for name in server.databases or ()
        ],
        "administrators": [
            _child(
                sid,
                "administrators",
                admin.object_id or "unknown",
                {
                    "objectId": admin.object_id,
                    "principalName": admin.principal_name,
                    "principalType": admin.principal_type,
                    "tenantId": admin.tenant_id,
                },
            )
            for admin in server.administrators or ()
        ],
        "privateEndpointConnections": list(server.private_endpoint_connections or ()),
        "replicas": [
            {
                "id": replica,
                "name": replica.rsplit("/", 1)[-1],
                "type": "Microsoft.DBforPostgreSQL/flexibleServers",
                "properties": {"replicationRole": "AsyncReplica"},
            }
            for replica in server.replicas or ()
        ],
        "advancedThreatProtectionSettings": [
            _child(
                sid,
                "advancedThreatProtectionSettings",
                "Default",
                {"state": server.threat_protection_state},
            )
        ],
        "diagnosticSettings": list(server.diagnostic_settings or ()),
    }


def _alert_body(alert: MetricAlert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "name": alert.name,
        "type": "Microsoft.Insights/metricAlerts",
        "location": "global",
        "properties": {
            "severity": alert.severity,
            "enabled": alert.enabled,
            "scopes": list(alert.scopes),
            "evaluationFrequency": "PT1M",
            "windowSize": "PT5M",
            "criteria": {
                "odata.type": "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                "allOf": [
                    {
                        "criterionType": "StaticThresholdCriterion",
                        "name": f"condition{index}",
                        "metricName": criterion.metric_name,
                        "metricNamespace": criterion.metric_namespace,
                        "operator": criterion.operator,
                        "threshold": criterion.threshold,
                        "timeAggregation": criterion.time_aggregation,
                    }
                    for index, criterion in enumerate(alert.criteria)
                ],
            },
            "actions": [{"actionGroupId": group} for group in alert.action_groups],
        },
    }


def fleet_world(
    template: dict[str, Any], subscription: str, group: str, count: int
) -> dict[str, Any]:
    """``count`` copies of the template world's first server (children and alerts included),
    named ``<group>-db-<n>``, in one group of one subscription: the benchmark's fleets."""
    bundle = template["servers"][0]
    old_id, old_name = bundle["server"]["id"], bundle["server"]["name"]
    bundle_text = json.dumps(bundle)
    alerts_text = json.dumps([a for a in template.get("metricAlerts", []) if _scoped_to(a, old_id)])
    servers: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    for index in range(count):
        name = f"{group}-db-{index}"
        new_id = (
            f"/subscriptions/{subscription}/resourceGroups/{group}"
            f"/providers/Microsoft.DBforPostgreSQL/flexibleServers/{name}"
        )
        servers.append(json.loads(_renamed(bundle_text, old_id, new_id, old_name, name)))
        for alert in json.loads(_renamed(alerts_text, old_id, new_id, old_name, name)):
            # The alert lives in the fleet's subscription too, as ARM lists it there (Resource
            # Graph files a row under the subscription its id names).
            alert_id = _SUBSCRIPTION_PREFIX.sub(f"/subscriptions/{subscription}", alert["id"])
            alert["id"], alert["name"] = f"{alert_id}-{index}", f"{alert['name']}-{index}"
            alerts.append(alert)
    return {"subscriptionId": subscription, "servers": servers, "metricAlerts": alerts}


_SUBSCRIPTION_PREFIX = re.compile(r"^/subscriptions/[^/]+", re.IGNORECASE)


def _scoped_to(alert: dict[str, Any], server_id: str) -> bool:
    scopes = alert.get("properties", {}).get("scopes", [])
    return any(str(scope).casefold() == server_id.casefold() for scope in scopes)


def _renamed(text: str, old_id: str, new_id: str, old_name: str, new_name: str) -> str:
    pattern = re.compile(re.escape(old_id), re.IGNORECASE)
    return pattern.sub(new_id, text).replace(old_name, new_name)
