"""Cross-source check: database size from Postgres against provisioned storage from Azure."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from engram_audit.checks.azure.common import prop
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
from engram_audit.model.values import as_int, text

GIB = 1024**3


def _server_for(database: PostgresDatabase, servers: tuple[AzureServer, ...]) -> AzureServer | None:
    """The server whose FQDN is the database host; a lone server pairs with a lone database."""
    host = (database.host or "").casefold()
    for server in servers:
        if host and text(prop(server, "fullyQualifiedDomainName")).casefold() == host:
            return server
    return servers[0] if len(servers) == 1 else None


class StorageUtilizationParams(Params):
    max_percent: float = Field(default=90, gt=0, le=100)


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
    design raises an alert, and a full disk makes the server read-only.

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
        server = _server_for(database, servers)
        if server is None:
            yield errored(
                resource, "no Azure server in the snapshot matches this database's host", expected
            )
            continue
        provisioned_gb = as_int(prop(server, "storage", "storageSizeGB"))
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
        )
