"""Checks on indexes: every vector column has the right ANN index, and no index is invalid."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from engram_audit.checks.base import (
    CheckContext,
    Outcome,
    Params,
    check,
    pg_not_collected,
    pg_resource,
    skipped,
    verdict,
)
from engram_audit.checks.postgres.common import each_database
from engram_audit.model.base import Source
from engram_audit.model.snapshot import VectorColumn, VectorIndex

# pgvector's defaults when an index is created without WITH (...).
PGVECTOR_DEFAULTS = {"hnsw": {"m": "16", "ef_construction": "64"}, "ivfflat": {"lists": "100"}}


class VectorIndexParams(Params):
    allowed_methods: list[str] = Field(default_factory=lambda: ["hnsw", "ivfflat"], min_length=1)
    opclasses: list[str] = Field(
        default_factory=lambda: ["vector_cosine_ops", "halfvec_cosine_ops"],
        description="Accepted operator classes (Zep searches by cosine distance)",
    )
    hnsw: dict[str, int] = Field(
        default_factory=dict, description="Required HNSW options, e.g. m, ef_construction"
    )
    ivfflat: dict[str, int] = Field(
        default_factory=dict, description="Required IVFFlat options, e.g. lists"
    )


def _expected(params: VectorIndexParams) -> str:
    methods = []
    for method in params.allowed_methods:
        options = {"hnsw": params.hnsw, "ivfflat": params.ivfflat}.get(method, {})
        detail = ", ".join(f"{k}={v}" for k, v in sorted(options.items()))
        methods.append(f"{method}({detail})" if detail else method)
    return " or ".join(methods) + " using " + "/".join(params.opclasses)


def _index_problems(index: VectorIndex, params: VectorIndexParams) -> list[str]:
    method = index.method.casefold()
    problems = []
    if method not in {m.casefold() for m in params.allowed_methods}:
        problems.append(f"method {index.method} not allowed")
    if params.opclasses and not set(index.opclasses) & set(params.opclasses):
        problems.append(f"operator class {', '.join(index.opclasses) or 'unknown'}")
    required = {"hnsw": params.hnsw, "ivfflat": params.ivfflat}.get(method, {})
    for option, wanted in sorted(required.items()):
        actual = index.options.get(option, PGVECTOR_DEFAULTS.get(method, {}).get(option))
        if actual is None or str(actual) != str(wanted):
            problems.append(f"{option}={actual} (want {wanted})")
    if not index.valid:
        problems.append("index is INVALID")
    return problems


def _describe(index: VectorIndex) -> str:
    method = index.method.casefold()
    options = dict(PGVECTOR_DEFAULTS.get(method, {}))
    options.update(index.options)
    detail = ", ".join(f"{k}={v}" for k, v in sorted(options.items()))
    return f"{index.name}: {index.method}({detail}) {'/'.join(index.opclasses)}"


def _indexes_on(column: VectorColumn, indexes: tuple[VectorIndex, ...]) -> list[VectorIndex]:
    return [
        i
        for i in indexes
        if i.schema_name == column.schema_name
        and i.table == column.table
        and column.column in i.columns
    ]


@check(
    "pg.vector.index",
    sources=[Source.POSTGRES],
    params=VectorIndexParams,
    reads=("postgres.vector_columns", "postgres.vector_indexes"),
)
def pg_vector_index(params: VectorIndexParams, context: CheckContext) -> Iterator[Outcome]:
    """Every vector column in scope has a valid ANN index of an allowed method, opclass and options.

    Without an HNSW or IVFFlat index a similarity search scans the whole table; with the wrong
    operator class the index is never used for cosine search; HNSW m/ef_construction and IVFFlat
    lists set the recall/speed trade-off the design chose (HNSW m=16, ef_construction=64; IVFFlat
    lists=100).

    Remediation: `CREATE INDEX CONCURRENTLY ON <table> USING hnsw (<column> vector_cosine_ops) WITH (m = 16, ef_construction = 64);`
    then drop the old index.
    """
    expected = _expected(params)
    for database in each_database(context):
        if database.vector_columns is None or database.vector_indexes is None:
            part = "vector_columns" if database.vector_columns is None else "vector_indexes"
            yield pg_not_collected(context, database, part, expected)
            continue
        if not database.vector_columns:
            yield skipped(pg_resource(database), "no vector columns in scope")
            continue
        for column in sorted(
            database.vector_columns, key=lambda c: (c.schema_name, c.table, c.column)
        ):
            resource = pg_resource(database, f"{column.schema_name}.{column.table}.{column.column}")
            candidates = _indexes_on(column, database.vector_indexes)
            if not candidates:
                yield verdict(
                    False, resource, expected, "no ANN index", "similarity search scans the table"
                )
                continue
            good = [i for i in candidates if not _index_problems(i, params)]
            if good:
                yield verdict(True, resource, expected, _describe(good[0]))
                continue
            worst = candidates[0]
            yield verdict(
                False,
                resource,
                expected,
                _describe(worst),
                "; ".join(_index_problems(worst, params)),
            )


class NoParamsValid(Params):
    pass


@check(
    "pg.index.valid",
    sources=[Source.POSTGRES],
    params=NoParamsValid,
    reads=("postgres.invalid_indexes",),
)
def pg_index_valid(params: NoParamsValid, context: CheckContext) -> Iterator[Outcome]:
    """No index in scope is INVALID (left behind by a failed `CREATE INDEX CONCURRENTLY`).

    An invalid index is never used by queries but is still maintained on every write: it costs
    write throughput and disk and hides the fact that the intended index does not exist.

    Remediation: `DROP INDEX CONCURRENTLY <index>;` then re-create it, or `REINDEX INDEX CONCURRENTLY <index>;`.
    """
    expected = "no invalid indexes"
    for database in each_database(context):
        if database.invalid_indexes is None:
            yield pg_not_collected(context, database, "invalid_indexes", expected)
            continue
        if not database.invalid_indexes:
            yield verdict(True, pg_resource(database), expected, "none invalid")
            continue
        for index in sorted(database.invalid_indexes, key=lambda i: (i.schema_name, i.name)):
            yield verdict(
                False,
                pg_resource(database, f"{index.schema_name}.{index.name}"),
                "valid",
                f"INVALID (on {index.schema_name}.{index.table})",
            )
