"""Connections in use against the slots ordinary roles may open."""

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
from engram_audit.checks.postgres.azure_reference import azure_reserved_connections
from engram_audit.checks.postgres.common import each_database, setting
from engram_audit.model.base import Source
from engram_audit.model.snapshot import PostgresDatabase
from engram_audit.model.values import as_int

RESERVING_SETTINGS = ("superuser_reserved_connections", "reserved_connections")


class _ReservedUnknown(Exception):
    pass


def _reserved(database: PostgresDatabase) -> tuple[dict[str, int], str]:
    """Slots reserved per setting, and a note when a value is not the server's own report.

    pg_settings is read whole, so a setting it lacks does not exist on that server:
    ``reserved_connections`` came with PostgreSQL 16. ``superuser_reserved_connections`` exists
    on every version; a snapshot that reports neither is incomplete, and Azure's documented
    values (10 + 5, read-only) stand in, said so in the finding.
    """
    reported = {name: setting(database, name) for name in RESERVING_SETTINGS}
    if all(value is None for value in reported.values()):
        azure = azure_reserved_connections()
        shown = " + ".join(f"{azure[name]} {name}" for name in RESERVING_SETTINGS)
        return dict(azure), f"reserved slots not reported: Azure's documented {shown} assumed"
    slots: dict[str, int] = {}
    for name, raw in reported.items():
        if raw is None and name == "reserved_connections":
            slots[name] = 0  # no such setting before PostgreSQL 16
            continue
        if raw is None:
            raise _ReservedUnknown(f"{name} is not reported in pg_settings")
        value = as_int(raw)
        if value is None or value < 0:
            raise _ReservedUnknown(f"{name} is not a readable number: {raw!r}")
        slots[name] = value
    return slots, ""


class ConnectionsParams(Params):
    max_percent: float = Field(default=80, gt=0, le=100)


@check(
    "pg.connections.utilization",
    sources=[Source.POSTGRES],
    params=ConnectionsParams,
    reads=("postgres.connections", "postgres.settings"),
)
def pg_connections(params: ConnectionsParams, context: CheckContext) -> Iterator[Outcome]:
    """Open connections stay below 80 % of the connections ordinary roles may open.

    Beyond that, a burst of Zep workers gets "too many connections" errors; the design alerts at
    80 % of max_connections and pools connections to stay under it. `max_connections` includes
    slots only superusers (`superuser_reserved_connections`) and roles with
    `pg_use_reserved_connections` (`reserved_connections`, PostgreSQL 16+) may use; Azure keeps
    15 of them (10 + 5, read-only): "max user connections = max_connections -
    (reserved_connections + superuser_reserved_connections)" (Microsoft's concepts-limits page,
    shipped in `checks/postgres/data/connections.json`), so a B1ms server's 50 leave 35. The
    reserved counts come from pg_settings; a snapshot that reports neither uses Azure's 10 + 5
    and says so. The count is server-wide: every client backend of every database, as
    pg_stat_activity shows them (Azure's own monitoring sessions included, so it errs high).

    Remediation: enable PgBouncer and lower per-instance pool sizes, or move to a larger SKU
    (max_connections scales with memory).
    """
    expected = f"<= {params.max_percent:g}% of max_connections minus reserved slots, server-wide"
    for database in each_database(context):
        resource = pg_resource(database)
        if database.connections is None:
            yield pg_not_collected(context, database, "connections", expected)
            continue
        if database.settings is None:
            yield pg_not_collected(context, database, "settings", expected)
            continue
        maximum = as_int(setting(database, "max_connections"))
        if not maximum:
            yield errored(resource, "max_connections is not reported in pg_settings", expected)
            continue
        try:
            reserved, note = _reserved(database)
        except _ReservedUnknown as unknown:
            yield errored(resource, str(unknown), expected)
            continue
        available = maximum - sum(reserved.values())
        breakdown = f"{maximum} max_connections" + "".join(
            f" - {reserved[name]} {name}" for name in RESERVING_SETTINGS
        )
        if available <= 0:
            yield errored(
                resource, f"no slots left for ordinary roles: {breakdown} = {available}", expected
            )
            continue
        used = sum(state.count for state in database.connections)
        percent = 100 * used / available
        yield verdict(
            percent <= params.max_percent,
            resource,
            expected,
            f"{used} of {available} ({percent:.0f}%), server-wide; {available} = {breakdown}",
            note,
        )
