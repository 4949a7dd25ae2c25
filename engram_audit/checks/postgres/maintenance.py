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
    pg_not_collected,
    pg_resource,
    verdict,
)
from engram_audit.checks.postgres.common import each_database, setting
from engram_audit.model.base import Source
from engram_audit.model.values import as_bool


class AutovacuumEnabledParams(Params):
    allow_table_overrides: bool = Field(
        default=False, description="Accept tables with autovacuum_enabled=false"
    )


@check(
    "pg.autovacuum.enabled",
    sources=[Source.POSTGRES],
    params=AutovacuumEnabledParams,
    reads=("postgres.settings", "postgres.tables"),
)
def pg_autovacuum_enabled(
    params: AutovacuumEnabledParams, context: CheckContext
) -> Iterator[Outcome]:
    """Autovacuum is on in the server and not switched off on any table in scope.

    A table-level `autovacuum_enabled = false` silently exempts that table (often the largest
    embedding table) from cleanup and statistics, whatever the server setting says.

    Remediation: `ALTER TABLE <table> RESET (autovacuum_enabled);` and keep `autovacuum = on`.
    """
    expected = "autovacuum=on" + ("" if params.allow_table_overrides else ", no table overrides")
    for database in each_database(context):
        resource = pg_resource(database)
        if database.settings is None:
            yield pg_not_collected(context, database, "settings", expected)
            continue
        server_on = as_bool(setting(database, "autovacuum"))
        if server_on is None:
            yield errored(resource, "setting autovacuum not reported", expected)
            continue
        if database.tables is None:
            yield pg_not_collected(context, database, "tables", expected)
            continue
        overridden = sorted(
            f"{t.schema_name}.{t.table}" for t in database.tables if t.autovacuum_enabled is False
        )
        if not server_on:
            yield verdict(False, resource, expected, "autovacuum=off")
        else:
            yield verdict(True, resource, expected, "autovacuum=on")
        if not params.allow_table_overrides:
            for table in overridden:
                yield verdict(
                    False,
                    pg_resource(database, table),
                    "autovacuum enabled",
                    "autovacuum_enabled=false",
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
            )
