"""A private path to the server: VNet integration or an approved private endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from engram_audit.checks.azure.common import each_server, prop
from engram_audit.checks.base import (
    CheckContext,
    Outcome,
    Params,
    check,
    errored,
    skipped,
    verdict,
)
from engram_audit.model.base import Source
from engram_audit.model.snapshot import AzureServer
from engram_audit.model.values import as_bool, dig, fold, text


class PrivateConnectivityParams(Params):
    only_when_public_access_disabled: bool = Field(
        default=False,
        description="Judge only servers whose public network access is Disabled (others: SKIP); "
        "false judges every server, as Azure Policy's private-endpoint audit does",
    )


def _connections(server: AzureServer) -> tuple[list[dict[str, Any]], str] | None:
    """Private endpoint connections: the collected child list, else the server body's list."""
    if server.private_endpoint_connections is not None:
        return [c for c in server.private_endpoint_connections if isinstance(c, dict)], "list"
    listed = prop(server, "privateEndpointConnections")
    if isinstance(listed, list):
        return [c for c in listed if isinstance(c, dict)], "server body"
    return None


def _status(connection: dict[str, Any]) -> str:
    return text(dig(connection, "properties", "privateLinkServiceConnectionState", "status"))


def _name(connection: dict[str, Any]) -> str:
    name = connection.get("name") or str(connection.get("id") or "").rsplit("/", 1)[-1]
    return text(name or "(unnamed)").split(".", 1)[0]


@check(
    "azure.network.private_connectivity",
    sources=[Source.AZURE],
    params=PrivateConnectivityParams,
    reads=("azure.server", "azure.private_endpoint_connections"),
    facts=("unscripted",),
)
def private_connectivity(
    params: PrivateConnectivityParams, context: CheckContext
) -> Iterator[Outcome]:
    """The server is reachable privately: VNet-integrated, or with an approved private endpoint.

    A server with public access disabled and no private path cannot serve Zep at all, and one
    with public access needs a private path to take the application off the internet. VNet
    integration is `network.delegatedSubnetResourceId` in the server body (private access); a
    private endpoint counts when its `privateLinkServiceConnectionState.status` is `Approved`,
    as in Azure Policy's "Private endpoint should be enabled for PostgreSQL flexible servers"
    (Pending, Rejected and Disconnected connections carry no traffic). Connections are read from
    the collected `privateEndpointConnections` list, else from the server body. Azure Policy asks
    for a private endpoint only; this check accepts VNet integration as well, the other private
    networking option Azure offers. With `only_when_public_access_disabled` a server whose public
    access is Enabled is SKIP (`azure.network.public_access` judges that exposure).

    A server with a Pending connection needs no new endpoint: its finding shows the approval of
    that connection, for a person to confirm, instead of the rule's fix.

    Remediation: `az network private-endpoint create --connection-name <name> --group-id postgresqlServer --private-connection-resource-id <server id> --vnet-name <vnet> --subnet <subnet>`
    (approve it if it is Pending), or create the server with private access (`--vnet`/`--subnet`).
    """
    expected = "VNet-integrated or an Approved private endpoint"
    for server in each_server(context):
        public = as_bool(prop(server, "network", "publicNetworkAccess"))
        if params.only_when_public_access_disabled and public is not False:
            if public is None:
                raw = text(prop(server, "network", "publicNetworkAccess"))
                yield errored(
                    server.id, f"network.publicNetworkAccess is not readable: {raw}", expected
                )
            else:
                yield skipped(
                    server.id,
                    "not applicable: public network access is Enabled (judged by "
                    "azure.network.public_access)",
                    expected,
                )
            continue
        subnet = prop(server, "network", "delegatedSubnetResourceId")
        if isinstance(subnet, str) and subnet.strip():
            actual = "VNet-integrated: subnet " + subnet.rstrip("/").rsplit("/", 1)[-1]
            yield verdict(True, server.id, expected, actual)
            continue
        found = _connections(server)
        if found is None:
            yield context.not_collected(server.id, "private_endpoint_connections", expected)
            continue
        connections, where = found
        approved = sorted(_name(c) for c in connections if fold(_status(c)) == "approved")
        if approved:
            actual = f"private endpoint(s) Approved: {', '.join(approved)}"
            yield verdict(True, server.id, expected, actual)
            continue
        others = sorted(f"{_name(c)} ({_status(c)})" for c in connections)
        pending = sorted(
            str(c.get("id"))
            for c in connections
            if fold(_status(c)) == "pending" and isinstance(c.get("id"), str)
        )
        facts = {"unscripted": _approve_pending(pending)} if pending else {}
        actual = "not VNet-integrated; " + (
            f"no Approved private endpoint: {', '.join(others)}"
            if others
            else "no private endpoint"
        )
        note = (
            ""
            if where == "list"
            else "read from the server body: the privateEndpointConnections list was not collected"
        )
        yield verdict(False, server.id, expected, actual, note, facts=facts)


def _approve_pending(ids: list[str]) -> str:
    """The fix when a private endpoint already asks for access: approval is a person's call
    (whoever holds an approved endpoint reaches the database), so it is shown, not scripted."""
    names = ", ".join(i.rstrip("/").rsplit("/", 1)[-1].split(".", 1)[0] for i in ids)
    commands = "; ".join(
        f"`az postgres flexible-server private-endpoint-connection approve --id {i} "
        "--description 'Reviewed: the application private endpoint'`"
        for i in ids
    )
    return (
        f"A private endpoint connection is Pending ({names}): no new endpoint is needed. "
        f"Confirm that it is the application's own endpoint, then approve it: {commands}"
    )
