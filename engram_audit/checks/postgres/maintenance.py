"""Checks on autovacuum: switched on everywhere, and actually keeping up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from pydantic import Field

from engram_audit.checks.base import (
    CheckContext,
    Outcome,
    Params,
    check,
    errored,
    pg_facts,
    pg_not_collected,
    pg_resource,
    verdict,
)
from engram_audit.checks.postgres.common import each_database, setting
from engram_audit.model.base import Source
from engram_audit.model.snapshot import TableStats
from engram_audit.model.values import as_bool


class AutovacuumEnabledParams(Params):
    allow_table_overrides: bool = Field(
        default=False,
        description="Accept tables with autovacuum_enabled=false or toast.autovacuum_enabled=false",
    )


def _switched_off(table: TableStats) -> list[str]:
    """The storage parameters that exempt this table (or its TOAST table) from autovacuum."""
    off = []
    if table.autovacuum_enabled is False:
        off.append("autovacuum_enabled=false")
    if table.toast_autovacuum_enabled is False:
        off.append("toast.autovacuum_enabled=false")
    return off


@check(
    "pg.autovacuum.enabled",
    sources=[Source.POSTGRES],
    params=AutovacuumEnabledParams,
    reads=("postgres.settings", "postgres.tables"),
    facts=("schema", "table", "unscripted"),
)
def pg_autovacuum_enabled(
    params: AutovacuumEnabledParams, context: CheckContext
) -> Iterator[Outcome]:
    """Autovacuum is on in the server and not switched off on any table in scope or its TOAST table.

    A table-level `autovacuum_enabled = false` silently exempts that table (often the largest
    embedding table) from cleanup and statistics, whatever the server setting says;
    `toast.autovacuum_enabled = false` does the same to the table's TOAST table, where large
    values such as long message texts live. PostgreSQL accepts any spelling of a boolean
    there (`off`, `f`, `no`, `0`, `of` ...: "any unambiguous prefix", see the boolean syntax
    in https://www.postgresql.org/docs/current/config-setting.html) and stores it as written;
    the snapshot holds the value as PostgreSQL's `parse_bool` reads it. A TOAST table without
    storage parameters of its own follows the main table's (autovacuum.c, "if this toast table
    does not have them, try the main rel"), so the main table's finding covers that case.

    Remediation: `ALTER TABLE <table> RESET (autovacuum_enabled, toast.autovacuum_enabled);` and
    keep `autovacuum = on`.
    """
    expected = "autovacuum=on" + ("" if params.allow_table_overrides else ", no table overrides")
    for database in each_database(context):
        resource = pg_resource(database)
        if database.settings is None:
            yield pg_not_collected(context, database, "settings", expected)
            continue
        raw = setting(database, "autovacuum")
        server_on = as_bool(raw)
        if server_on is None:
            reason = (
                "setting autovacuum not reported"
                if raw is None
                else f"setting autovacuum is not a boolean PostgreSQL accepts: {raw!r}"
            )
            yield errored(resource, reason, expected)
            continue
        if database.tables is None:
            yield pg_not_collected(context, database, "tables", expected)
            continue
        overridden = sorted(
            ((t.schema_name, t.table), _switched_off(t))
            for t in database.tables
            if _switched_off(t)
        )
        if not server_on:
            # The server-wide switch is a server parameter, not SQL: on Azure it is set through
            # ARM (the azure.param.autovacuum rule's fix), so no table statement applies here.
            yield verdict(
                False,
                resource,
                expected,
                "autovacuum=off",
                facts={
                    "unscripted": "autovacuum is off for the whole server: it is a server "
                    "parameter, set through Azure (az postgres flexible-server parameter set "
                    "--name autovacuum --value on, the fix of the Azure autovacuum rule), not "
                    "by a statement in this database"
                },
            )
        else:
            yield verdict(True, resource, expected, "autovacuum=on")
        if not params.allow_table_overrides:
            for (schema, table), off in overridden:
                yield verdict(
                    False,
                    pg_resource(database, f"{schema}.{table}"),
                    "autovacuum enabled",
                    ", ".join(off),
                    facts=pg_facts(database, schema, table=table),
                )


class AutovacuumRecencyParams(Params):
    max_age_hours: float = Field(
        default=168, gt=0, description="Longest acceptable time since the last vacuum"
    )
    min_dead_tuples: int = Field(
        default=1000, ge=0, description="Tables with fewer dead tuples need no vacuum yet"
    )


@check(
    "pg.autovacuum.recency",
    sources=[Source.POSTGRES],
    params=AutovacuumRecencyParams,
    reads=("postgres.tables",),
    facts=("schema", "table"),
)
def pg_autovacuum_recency(
    params: AutovacuumRecencyParams, context: CheckContext
) -> Iterator[Outcome]:
    """Tables with dead tuples were vacuumed recently (by autovacuum or by hand).

    "Autovacuum should run regularly to maintain index health": a table carrying dead tuples
    whose last vacuum is older than the limit (or that was never vacuumed) is not being kept up.

    Remediation: `VACUUM (ANALYZE) <table>;` now, then tune `autovacuum_vacuum_scale_factor` for the
    table or find what blocks autovacuum (long transactions, locks).
    """
    limit = timedelta(hours=params.max_age_hours)
    expected = (
        f"vacuumed within {params.max_age_hours:g} h when >= {params.min_dead_tuples} dead tuples"
    )
    for database in each_database(context):
        if database.tables is None:
            yield pg_not_collected(context, database, "tables", expected)
            continue
        stale = []
        for table in sorted(database.tables, key=lambda t: (t.schema_name, t.table)):
            if (table.n_dead_tup or 0) < params.min_dead_tuples:
                continue
            times = [t for t in (table.last_vacuum, table.last_autovacuum) if t is not None]
            last = max(times) if times else None
            if last is None or context.now - last > limit:
                stale.append((table, last))
        if not stale:
            yield verdict(
                True, pg_resource(database), expected, f"{len(database.tables)} table(s) up to date"
            )
            continue
        for table, last in stale:
            age = f"last vacuum {last.isoformat()}" if last else "never vacuumed"
            yield verdict(
                False,
                pg_resource(database, f"{table.schema_name}.{table.table}"),
                expected,
                f"{table.n_dead_tup} dead tuples, {age}",
                facts=pg_facts(database, table.schema_name, table=table.table),
            )
