"""Azure Resource Graph: every flexible server in scope, and every metric alert, in a few queries.

Discovery across subscriptions or a management group, or by tag or name, is one paged query
(``POST /providers/Microsoft.ResourceGraph/resources``, the one POST the read-only guard
allows) instead of a listing per subscription plus a GET per server: the ``resources`` table
holds each flexible server with its ``properties``, ``sku``, ``tags`` and ``identity`` as ARM
returns them (shared/reference/README.md, "Azure Resource Graph"), so no per-server GET of the
body is needed. Child resources (configurations, firewall rules, ...) are not in Resource Graph
and are still read through ARM.

The queries use only ``where <column> =~ '<literal>'`` (case-insensitive equality, as in the
official samples), ``project`` and ``order by id asc`` (paging needs ``id`` in the result:
REST reference, "First page query"). Pages hold at most 1,000 rows and are followed by
``$skipToken``. Tags are matched here, not in the query: ARM tag names are case-insensitive
(Microsoft, "Use tags to organize your Azure resources": "Tag names are case-insensitive for
operations"), whereas ``tags['environment']`` in KQL reads the property bag with its exact key.
Every scope filter the query applied (type, subscription, resource group, name) is applied again
to what comes back, so a row outside the scope is never audited.

Resource Graph is a copy: Resource Manager notifies it of changes, and regular full scans catch
missed notifications (Microsoft, "What is Azure Resource Graph?", how it is kept current). It
can lag ARM by minutes: a server created, deleted or changed just before a run may be missing,
still present, or shown with its previous properties. ``--server`` and ``--resource-group``
read ARM itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from azure.core.rest import HttpRequest
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

from engram_audit.collectors.azure.clients import ArmClients
from engram_audit.collectors.azure.errors import UnreadableAnswer, json_answer
from engram_audit.collectors.azure.request import AzureRequest

FLEX_TYPE = "microsoft.dbforpostgresql/flexibleservers"
ALERT_TYPE = "microsoft.insights/metricalerts"
PAGE_ROWS = 1000
GRAPH_PATH = "/providers/Microsoft.ResourceGraph/resources"
# azure-mgmt-resourcegraph 8.0.x's own api-version for ``resources`` (build_resources_request);
# tests/azure/test_azure_discovery.py holds the two equal.
GRAPH_API_VERSION = "2021-03-01"
# The server body's top-level keys, as ARM returns them; the row's other columns are dropped.
_SERVER_COLUMNS = ("id", "name", "type", "location", "tags", "sku", "identity", "properties")
_ALERT_COLUMNS = ("id", "name", "type", "location", "tags", "properties")
# Names, groups and ids are put in KQL literals; anything beyond ARM's naming characters (and
# the id's slashes) is refused rather than escaped.
_LITERAL_SAFE = re.compile(r"^[A-Za-z0-9._()\-/]+$")
GRAPH_PERMISSION = (
    "read access to the resources (Resource Graph shows only what the identity can read)"
)


class UnsafeLiteral(ValueError):
    """A value that cannot be put in a query as given."""


def literal(value: str) -> str:
    if not _LITERAL_SAFE.match(value):
        raise UnsafeLiteral(f"{value[:60]!r} has characters an Azure name cannot have")
    return f"'{value}'"


def servers_query(request: AzureRequest) -> str:
    """The KQL that finds the request's flexible servers (tags are matched client-side)."""
    stages = ["resources", f"where type =~ {literal(FLEX_TYPE)}"]
    if request.resource_group:
        stages.append(f"where resourceGroup =~ {literal(request.resource_group)}")
    if request.names:
        stages.append("where " + " or ".join(f"name =~ {literal(n)}" for n in request.names))
    stages += [f"project {', '.join(_SERVER_COLUMNS)}", "order by id asc"]
    return "\n| ".join(stages)


def alerts_query() -> str:
    stages = [
        "resources",
        f"where type =~ {literal(ALERT_TYPE)}",
        f"project {', '.join(_ALERT_COLUMNS)}",
        "order by id asc",
    ]
    return "\n| ".join(stages)


def query_rows(clients: ArmClients, request: AzureRequest, query: str) -> Iterator[dict[str, Any]]:
    """Every row of ``query`` over the request's subscriptions or management group, page by
    page (``$skipToken``); each row as Resource Graph sent it."""
    token: str | None = None
    followed: set[str] = set()
    received = 0
    while True:
        body = QueryRequest(
            query=query,
            subscriptions=list(request.subscription_ids) or None,
            management_groups=[request.management_group] if request.management_group else None,
            options=QueryRequestOptions(
                top=None if token else PAGE_ROWS, skip_token=token, result_format="objectArray"
            ),
        )
        page = _query_page(clients, body)
        rows = page.get("data")
        # A page without its rows is broken, not empty: "no servers" must never be read off it.
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise UnexpectedPage("Resource Graph's answer has no list of rows ('data')")
        received += len(rows)
        yield from rows
        skip_token = page.get("$skipToken")
        token = skip_token if isinstance(skip_token, str) and skip_token else None
        if token is not None and token in followed:
            raise UnexpectedPage("Resource Graph's $skipToken leads back to a page already read")
        if token is not None:
            followed.add(token)
            continue
        total = page.get("totalRecords")
        truncated = str(page.get("resultTruncated", "")).casefold() == "true"
        # totalRecords counts every row the query matched (REST reference, QueryResponse).
        if truncated or (isinstance(total, int) and total > received):
            raise TruncatedResult(
                f"Resource Graph gave {received} of {total} rows and no $skipToken to the rest"
            )
        return


def _query_page(clients: ArmClients, body: QueryRequest) -> dict[str, Any]:
    """One page as wire JSON: the POST the SDK's ``resources`` sends (its path, api-version and
    serialised ``QueryRequest``) on the same read-only pipeline, without deserialising the rows
    into its model, which walked every value of every row (a tenth of the collector's CPU for a
    fleet: README, "Fleet speed")."""
    response = clients.graph.send_request(
        HttpRequest(
            "POST",
            f"{clients.endpoint}{GRAPH_PATH}",
            params={"api-version": GRAPH_API_VERSION},
            json=body.serialize(),
        )
    )
    page = json_answer(response, UnexpectedPage("Resource Graph's answer is not JSON"))
    if not isinstance(page, dict):
        raise UnexpectedPage("Resource Graph's answer is not a JSON object")
    return page


class TruncatedResult(UnreadableAnswer):
    """Resource Graph said the result was truncated and gave no way to the rest."""


class UnexpectedPage(UnreadableAnswer):
    """Resource Graph answered 200 with something other than a query response."""


def server_body(row: dict[str, Any]) -> dict[str, Any]:
    """A server row as the ARM body it mirrors: ARM's top-level keys, those Resource Graph
    left empty (``identity``, ``tags`` when null) omitted as ARM omits them."""
    return {key: row[key] for key in _SERVER_COLUMNS if row.get(key) is not None}


def alert_body(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in _ALERT_COLUMNS if row.get(key) is not None}
