"""Cross-source check: database size from Postgres against provisioned storage from Azure."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from engram_audit.checks.base import (
    CheckContext,
    Outcome,
    Params,
    check,
    errored,
    pg_not_collected,
    pg_resource,
    verdict,
)
from engram_audit.checks.postgres.common import each_database
from engram_audit.model.base import Source
from engram_audit.model.snapshot import AzureServer, PostgresDatabase
from engram_audit.model.values import as_int, dig, same_resource_id

GIB = 1024**3


def _host(name: object) -> str:
    """A host name compared the DNS way: case-insensitive, without the root's trailing dot."""
    return str(name).strip().rstrip(".").casefold() if isinstance(name, str) else ""


def _fqdn(server: AzureServer) -> str:
    return _host(dig(server.resource, "properties", "fullyQualifiedDomainName"))


class _Unpaired(Exception):
    """The database cannot be paired with one server; the message says why."""


def _server_for(
    database: PostgresDatabase, servers: tuple[AzureServer, ...], named: str | None
) -> tuple[AzureServer, str]:
    """The server hosting the database and how that is known; raises _Unpaired otherwise.

    The host name decides (the server's ``properties.fullyQualifiedDomainName`` equals the
    database host), or the policy names the server; nothing is paired by elimination.
    """
    host = _host(database.host)
    by_fqdn = [server for server in servers if host and _fqdn(server) == host]
    if named is not None:
        matches = [
            server
            for server in servers
            if server.name.casefold() == named.strip().casefold()
            or same_resource_id(server.id, named.strip())
        ]
        if not matches:
            raise _Unpaired(f"the policy names server {named}, which is not in the snapshot")
        if len(matches) > 1:
            raise _Unpaired(
                f"the policy's server {named} matches {len(matches)} servers: give its resource id"
            )
        if by_fqdn and matches[0] not in by_fqdn:
            raise _Unpaired(
                f"host {database.host} is the FQDN of {by_fqdn[0].name}, "
                f"but the policy names {matches[0].name}"
            )
        return matches[0], "named by the policy"
    if len(by_fqdn) == 1:
        return by_fqdn[0], "its FQDN is the database host"
    if by_fqdn:
        names = ", ".join(sorted(server.name for server in by_fqdn))
        raise _Unpaired(
            f"{len(by_fqdn)} servers in the snapshot have FQDN {database.host}: {names}"
        )
    raise _Unpaired(
        f"no Azure server in the snapshot has FQDN {database.host or '(host unknown)'}"
        " (properties.fullyQualifiedDomainName): name the server in the policy (param server)"
    )


class StorageUtilizationParams(Params):
    max_percent: float = Field(default=90, gt=0, le=100)
    server: str | None = Field(
        default=None,
        description="Name or ARM resource id of the flexible server hosting the database, for a "
        "host that is not the server's FQDN (private IP, custom DNS name, pooler)",
    )


@check(
    "pg.storage.utilization",
    sources=[Source.POSTGRES, Source.AZURE],
    params=StorageUtilizationParams,
    reads=("azure.server", "postgres.database_size"),
)
def pg_storage_utilization(
    params: StorageUtilizationParams, context: CheckContext
) -> Iterator[Outcome]:
    """The Zep database uses at most 90 % of the server's provisioned storage.

    `pg_database_size('zep')` from Postgres against `storageSizeGB` from Azure: past 90 % the
    design raises an alert, and a full disk makes the server read-only. The database is paired
    with the server whose `properties.fullyQualifiedDomainName` is the database host (compared
    case-insensitively), or with the server the policy names (`server`: name or resource id)
    when it connects by private IP or another DNS name. Anything else is ERROR, never a guess:
    no server with that FQDN, several, or a named server that contradicts the host.

    Remediation: grow storage (`az postgres flexible-server update --storage-size <GB>`), enable
    auto-grow, and run the session archival job.
    """
    expected = f"<= {params.max_percent:g}% of provisioned storage"
    servers = context.azure_servers
    for database in each_database(context):
        resource = pg_resource(database)
        if database.database_size_bytes is None:
            yield pg_not_collected(context, database, "database_size_bytes", expected)
            continue
        try:
            server, pairing = _server_for(database, servers, params.server)
        except _Unpaired as unpaired:
            yield errored(resource, str(unpaired), expected)
            continue
        provisioned_gb = as_int(dig(server.resource, "properties", "storage", "storageSizeGB"))
        if not provisioned_gb:
            yield errored(resource, f"provisioned storage of {server.name} unknown", expected)
            continue
        used_gb = database.database_size_bytes / GIB
        percent = 100 * used_gb / provisioned_gb
        yield verdict(
            percent <= params.max_percent,
            resource,
            expected,
            f"{used_gb:.1f} GB of {provisioned_gb} GB ({percent:.1f}%)",
            f"server {server.name}: {pairing}",
        )
