"""Checks on indexes: every vector column has the right ANN index, and no index is invalid."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import Field, model_validator

from engram_audit.checks.base import (
    CheckContext,
    Outcome,
    Params,
    check,
    errored,
    pg_facts,
    pg_not_collected,
    pg_resource,
    skipped,
    verdict,
)
from engram_audit.checks.postgres.common import each_database
from engram_audit.model.base import Source
from engram_audit.model.snapshot import IndexRef, PostgresDatabase, VectorColumn, VectorIndex
from engram_audit.model.values import as_int, pg_bool

# Index options as PostgreSQL stores them (text, as written) when an index is created without
# WITH (...). pgvector: src/hnsw.h HNSW_DEFAULT_M 16, HNSW_DEFAULT_EF_CONSTRUCTION 64;
# src/ivfflat.h IVFFLAT_DEFAULT_LISTS 100 (README "Index Options"). Azure's pg_diskann:
# "max_neighbors ... (Defaults to 32)", "l_value_ib ... (Defaults to 100)", "product_quantized
# ... (Defaults to false)", "pq_param_num_chunks ... (Defaults to 0)", "pq_param_training_samples
# ... (Defaults to 0)", 0 meaning "determined automatically" (MicrosoftDocs/azure-databases-docs
# articles/postgresql/extensions/how-to-use-pgdiskann.md@05e7fc0d3e5f59a712fdecc95534aa6d7aa2d246).
PGVECTOR_DEFAULTS = {"hnsw": {"m": "16", "ef_construction": "64"}, "ivfflat": {"lists": "100"}}
DISKANN_DEFAULTS = {
    "max_neighbors": "32",
    "l_value_ib": "100",
    "product_quantized": "false",
    "pq_param_num_chunks": "0",
    "pq_param_training_samples": "0",
}
INDEX_DEFAULTS: dict[str, dict[str, str]] = {**PGVECTOR_DEFAULTS, "diskann": DISKANN_DEFAULTS}

# pgvector's bounds on lists (src/ivfflat.h IVFFLAT_MIN_LISTS 1, IVFFLAT_MAX_LISTS 32768) and its
# README's starting point: "rows / 1000 for up to 1M rows and sqrt(rows) for over 1M rows".
IVFFLAT_MIN_LISTS = 1
IVFFLAT_MAX_LISTS = 32768
IVFFLAT_SQRT_ABOVE_ROWS = 1_000_000


class VectorIndexParams(Params):
    allowed_methods: list[str] = Field(
        default_factory=lambda: ["hnsw", "ivfflat"],
        min_length=1,
        description="Index methods accepted: hnsw, ivfflat (pgvector), diskann (Azure's pg_diskann)",
    )
    opclasses: list[str] = Field(
        default_factory=lambda: ["vector_cosine_ops", "halfvec_cosine_ops"],
        description="Accepted operator classes (Zep searches by cosine distance)",
    )
    hnsw: dict[str, int] = Field(
        default_factory=dict, description="Required HNSW options, e.g. m, ef_construction"
    )
    ivfflat: dict[str, int | Literal["auto"]] = Field(
        default_factory=dict,
        description="Required IVFFlat options: lists as a number, or auto (pgvector's rows/1000 "
        "up to 1M rows, sqrt(rows) above, from the table's n_live_tup)",
    )
    diskann: dict[
        Literal[
            "max_neighbors",
            "l_value_ib",
            "product_quantized",
            "pq_param_num_chunks",
            "pq_param_training_samples",
        ],
        bool | int,
    ] = Field(
        default_factory=dict,
        description="Required DiskANN options: max_neighbors, l_value_ib, product_quantized, "
        "pq_param_num_chunks, pq_param_training_samples",
    )
    tables: list[str] = Field(
        default_factory=list,
        description="Embedding tables this rule judges, as names or globs (docstore_*) with or "
        "without the schema; empty: every vector column in scope",
    )
    lists_auto_tolerance_percent: float = Field(
        default=0,
        ge=0,
        le=100,
        description="With ivfflat lists: auto, also accept lists this many percent off the "
        "guidance (0: the guidance rounded either way)",
    )

    @model_validator(mode="after")
    def _auto_only_for_lists(self) -> VectorIndexParams:
        misplaced = sorted(k for k, v in self.ivfflat.items() if v == "auto" and k != "lists")
        if misplaced:
            raise ValueError(f"only ivfflat lists can be auto, not {', '.join(misplaced)}")
        return self


def _required(params: VectorIndexParams, method: str) -> dict[str, int | bool | str]:
    options: dict[str, int | bool | str] = {}
    if method == "hnsw":
        options.update(params.hnsw)
    elif method == "ivfflat":
        options.update(params.ivfflat)
    elif method == "diskann":
        options.update((str(key), value) for key, value in params.diskann.items())
    return options


def _shown(value: int | bool | str) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _expected(params: VectorIndexParams) -> str:
    methods = []
    for method in params.allowed_methods:
        options = _required(params, method.casefold())
        detail = ", ".join(f"{k}={_shown(v)}" for k, v in sorted(options.items()))
        methods.append(f"{method}({detail})" if detail else method)
    return " or ".join(methods) + " using " + "/".join(params.opclasses)


@dataclass(frozen=True)
class _ListsGuidance:
    """pgvector's starting point for lists at this row count, as an accepted integer range."""

    rows: int
    low: int
    high: int

    @property
    def formula(self) -> str:
        rule = "rows/1000" if self.rows <= IVFFLAT_SQRT_ABOVE_ROWS else "sqrt(rows)"
        wanted = str(self.low) if self.low == self.high else f"{self.low}..{self.high}"
        return f"{wanted}: {rule} for {self.rows} rows"


def _lists_guidance(rows: int, tolerance_percent: float) -> _ListsGuidance:
    ideal = rows / 1000 if rows <= IVFFLAT_SQRT_ABOVE_ROWS else math.sqrt(rows)
    share = tolerance_percent / 100
    low = math.floor(ideal * (1 - share))
    high = math.ceil(ideal * (1 + share))
    return _ListsGuidance(rows=rows, low=_clamp_lists(low), high=_clamp_lists(high))


def _clamp_lists(lists: int) -> int:
    return min(max(lists, IVFFLAT_MIN_LISTS), IVFFLAT_MAX_LISTS)


def _rows(database: PostgresDatabase, index: VectorIndex) -> int | None:
    for table in database.tables or ():
        if (table.schema_name, table.table) == (index.schema_name, index.table):
            return table.n_live_tup
    return None


class _RowsUnknown(Exception):
    pass


def _option_matches(actual: str | None, wanted: int | bool | str) -> bool:
    """Compare a stored option (text as written: ``016``, ``on``) with the policy's value."""
    if actual is None:
        return False
    if isinstance(wanted, bool):
        return pg_bool(actual) is wanted
    if isinstance(wanted, int):
        return as_int(actual) == wanted
    return actual == wanted


def _index_problems(
    index: VectorIndex, params: VectorIndexParams, database: PostgresDatabase
) -> list[str]:
    """What is wrong with the index; raises _RowsUnknown when lists=auto needs a missing count."""
    method = index.method.casefold()
    problems = []
    if method not in {m.casefold() for m in params.allowed_methods}:
        problems.append(f"method {index.method} not allowed")
    if params.opclasses and not set(index.opclasses) & set(params.opclasses):
        problems.append(f"operator class {', '.join(index.opclasses) or 'unknown'}")
    defaults = INDEX_DEFAULTS.get(method, {})
    for option, wanted in sorted(_required(params, method).items()):
        actual = index.options.get(option, defaults.get(option))
        if method == "ivfflat" and option == "lists" and wanted == "auto":
            rows = _rows(database, index)
            if rows is None:
                raise _RowsUnknown
            guidance = _lists_guidance(rows, params.lists_auto_tolerance_percent)
            lists = as_int(actual)
            if lists is None or not guidance.low <= lists <= guidance.high:
                problems.append(f"lists={actual} (want {guidance.formula})")
            continue
        if not _option_matches(actual, wanted):
            problems.append(f"{option}={actual} (want {_shown(wanted)})")
    if not index.valid:
        problems.append("index is INVALID")
    return problems


def _describe(index: VectorIndex) -> str:
    options = dict(INDEX_DEFAULTS.get(index.method.casefold(), {}))
    options.update(index.options)
    detail = ", ".join(f"{k}={v}" for k, v in sorted(options.items()))
    return f"{index.name}: {index.method}({detail}) {'/'.join(index.opclasses)}"


def _covers(index: VectorIndex, column: str) -> bool:
    """Whether the index is built on the column: by the attribute numbers the collector read
    (key columns, and the columns its expressions use), else, in snapshots before 1.2, by the
    key as shown, plain or double-quoted (``"Embedding"``)."""
    if index.table_columns is not None:
        return column in index.table_columns
    quoted = '"' + column.replace('"', '""') + '"'
    return column in index.columns or quoted in index.columns


def _indexes_on(column: VectorColumn, indexes: tuple[VectorIndex, ...]) -> list[VectorIndex]:
    return [
        i
        for i in indexes
        if i.schema_name == column.schema_name
        and i.table == column.table
        and _covers(i, column.column)
    ]


def _judged_table(column: VectorColumn, patterns: list[str]) -> bool:
    names = (column.table, f"{column.schema_name}.{column.table}")
    return not patterns or any(fnmatchcase(n, p) for p in patterns for n in names)


# PostgreSQL keeps NAMEDATALEN - 1 = 63 bytes of a name and cuts longer ones on a character
# boundary (truncate_identifier, src/backend/parser/scansup.c): compare names as it stores them.
MAX_IDENTIFIER_BYTES = 63


def _clip(name: str, limit: int = MAX_IDENTIFIER_BYTES) -> str:
    return name.encode("utf-8")[:limit].decode("utf-8", "ignore")


def hnsw_index_name(column: VectorColumn, database: PostgresDatabase) -> str:
    """A name for the column's new HNSW index: Zep legacy's own, ``<table>_<column>_hnsw_idx``
    (getzep/zep ``pkg/store/postgres/schema.go@v0.27.2`` L481-508, which creates it ``IF NOT
    EXISTS``), numbered when a vector index or table in the schema already has it (as
    PostgreSQL's ChooseRelationName numbers its own). Other indexes are not collected: should
    one hold the name, ``IF NOT EXISTS`` leaves it and the next audit fails again."""
    taken = {
        index.name
        for index in database.vector_indexes or ()
        if index.schema_name == column.schema_name
    } | {table.table for table in database.tables or () if table.schema_name == column.schema_name}
    base = f"{column.table}_{column.column}_hnsw_idx"
    for number in range(len(taken) + 1):
        suffix = str(number) if number else ""
        name = _clip(base, MAX_IDENTIFIER_BYTES - len(suffix)) + suffix
        if name not in taken:
            return name
    raise AssertionError("unreachable: more candidates than taken names")


def _judge_column(
    column: VectorColumn, database: PostgresDatabase, params: VectorIndexParams, expected: str
) -> Outcome:
    resource = pg_resource(database, f"{column.schema_name}.{column.table}.{column.column}")
    facts = pg_facts(
        database,
        column.schema_name,
        table=column.table,
        column=column.column,
        opclass=f"{column.type}_cosine_ops",
        hnsw_index=hnsw_index_name(column, database),
    )
    candidates = _indexes_on(column, database.vector_indexes or ())
    if not candidates:
        return verdict(
            False,
            resource,
            expected,
            "no ANN index",
            "similarity search scans the table",
            facts=facts,
        )
    judged: list[tuple[VectorIndex, list[str]]] = []
    unknown: list[VectorIndex] = []
    for index in candidates:
        try:
            judged.append((index, _index_problems(index, params, database)))
        except _RowsUnknown:
            unknown.append(index)
    good = [index for index, problems in judged if not problems]
    if good:
        return verdict(True, resource, expected, _describe(good[0]))
    if unknown:
        part = "tables not collected" if database.tables is None else "no row count for the table"
        return errored(
            resource,
            f"lists=auto needs {column.schema_name}.{column.table}'s row count (n_live_tup): {part}",
            expected,
        )
    worst, problems = judged[0]
    facts["index"] = worst.name  # the index the new one replaces
    return verdict(False, resource, expected, _describe(worst), "; ".join(problems), facts=facts)


@check(
    "pg.vector.index",
    sources=[Source.POSTGRES],
    params=VectorIndexParams,
    reads=("postgres.vector_columns", "postgres.vector_indexes", "postgres.tables"),
    facts=("schema", "table", "column", "opclass", "hnsw_index", "index"),
)
def pg_vector_index(params: VectorIndexParams, context: CheckContext) -> Iterator[Outcome]:
    """Every vector column in scope has a valid ANN index of an allowed method, opclass and options.

    Without an HNSW or IVFFlat index a similarity search scans the whole table; with the wrong
    operator class the index is never used for cosine search; HNSW m/ef_construction and IVFFlat
    lists set the recall/speed trade-off the design chose (HNSW m=16, ef_construction=64; IVFFlat
    lists=100). An option the index was built without counts at its default (pgvector: m=16,
    ef_construction=64, lists=100). IVFFlat `lists: auto` follows pgvector's README, "a good place
    to start is `rows / 1000` for up to 1M rows and `sqrt(rows)` for over 1M rows", with rows from
    the table's `n_live_tup` (an estimate), rounded either way, within 1..32768 and widened by
    `lists_auto_tolerance_percent`. Azure's DiskANN (method `diskann`, extension `pg_diskann`, which
    needs `vector`) counts only where the policy lists it in `allowed_methods`; its options
    default as Microsoft documents (max_neighbors=32, l_value_ib=100, product_quantized=false,
    pq_param_num_chunks=0 and pq_param_training_samples=0, 0 meaning automatic). Options compare
    by value as PostgreSQL reads them (`016` is 16, `on` is true).

    An index counts for a column when it is built on it: a key column, or a column its key
    expression uses (`USING hnsw ((embedding::halfvec(1536)) halfvec_cosine_ops)`, pgvector's
    half-precision indexing), read from the catalog by attribute number, so quoted names
    (`"Embedding"`) match too. `tables` limits the rule to named embedding tables, e.g. Zep's
    `message_embedding`, `summary_embedding` and `docstore_*` (legacy v0.27.2, which creates
    `<table>_<column>_hnsw_idx` with m=16, ef_construction=64 and vector_cosine_ops itself:
    getzep/zep `pkg/store/postgres/schema.go@v0.27.2` L481-508).

    A failing column's fix names a free index name (`<table>_<column>_hnsw_idx`, Zep legacy's
    own) and, when the column has an index that does not do, that index, for a person to drop
    once the new one is built and used.

    Remediation: `CREATE INDEX CONCURRENTLY IF NOT EXISTS <table>_<column>_hnsw_idx ON <table> USING hnsw (<column> vector_cosine_ops) WITH (m = 16, ef_construction = 64);`
    then drop the old index.
    """
    expected = _expected(params)
    if params.ivfflat.get("lists") == "auto" and params.lists_auto_tolerance_percent:
        expected += f" (lists within {params.lists_auto_tolerance_percent:g}% of the guidance)"
    for database in each_database(context):
        if database.vector_columns is None or database.vector_indexes is None:
            part = "vector_columns" if database.vector_columns is None else "vector_indexes"
            yield pg_not_collected(context, database, part, expected)
            continue
        columns = [c for c in database.vector_columns if _judged_table(c, params.tables)]
        if not columns:
            where = f" of tables {', '.join(params.tables)}" if params.tables else ""
            yield skipped(pg_resource(database), f"no vector columns{where} in scope")
            continue
        for column in sorted(columns, key=lambda c: (c.schema_name, c.table, c.column)):
            yield _judge_column(column, database, params, expected)


class NoParamsValid(Params):
    pass


# pg_get_indexdef starts every definition with "CREATE [UNIQUE] INDEX <name> ON [ONLY] ..."
# (PostgreSQL src/backend/utils/adt/ruleutils.c, pg_get_indexdef_worker).
_DEFINITION = re.compile(r"^CREATE (?P<unique>UNIQUE )?INDEX (?P<rest>.*)$", re.DOTALL)
# REINDEX CONCURRENTLY leaves <index>_ccnew (its transient copy) or <index>_ccold (the original
# it could not drop), with a number appended when the name is taken: "If the index marked
# INVALID is suffixed _ccnew ... the recommended recovery method is to drop it using DROP
# INDEX, then attempt REINDEX CONCURRENTLY again. If the invalid index is instead suffixed
# _ccold ... just drop said index" (https://www.postgresql.org/docs/current/sql-reindex.html;
# the suffix and number as corrected by postgres commit a79ede0a4ebf). Neither is re-created.
_REINDEX_LEFTOVER = re.compile(r"_cc(?:new|old)[0-9]*$")


def recreation(index: IndexRef) -> str:
    """The statement that re-creates a dropped invalid index, built concurrently; "" when
    there is none to offer (a REINDEX CONCURRENTLY leftover, no recorded definition, or an
    index on a partitioned table, which PostgreSQL cannot build concurrently)."""
    if not index.definition or _REINDEX_LEFTOVER.search(index.name):
        return ""
    match = _DEFINITION.match(index.definition)
    if match is None or " ON ONLY " in index.definition:
        return ""
    return f"CREATE {match['unique'] or ''}INDEX CONCURRENTLY {match['rest']}"


@check(
    "pg.index.valid",
    sources=[Source.POSTGRES],
    params=NoParamsValid,
    reads=("postgres.invalid_indexes",),
    facts=("schema", "table", "index", "index_definition"),
)
def pg_index_valid(params: NoParamsValid, context: CheckContext) -> Iterator[Outcome]:
    """No index in scope is INVALID (left behind by a failed `CREATE INDEX CONCURRENTLY`).

    An invalid index is never used by queries but is still maintained on every write: it costs
    write throughput and disk and hides the fact that the intended index does not exist. A
    build usually fails because the data violates the index (duplicates for a UNIQUE index), so
    re-creating it needs the data fixed first: the finding carries the index's definition
    (`pg_get_indexdef`) as a `CREATE INDEX CONCURRENTLY` statement to review, never to run
    blindly. An index left by a failed `REINDEX CONCURRENTLY` (`<index>_ccnew`, `<index>_ccold`)
    is only dropped: the original still exists (PostgreSQL's REINDEX documentation).

    Remediation: `DROP INDEX CONCURRENTLY IF EXISTS <index>;` then, once the data allows it,
    re-create it from its definition with `CREATE INDEX CONCURRENTLY`.
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
            facts = pg_facts(database, index.schema_name, table=index.table, index=index.name)
            statement = recreation(index)
            if statement:
                facts["index_definition"] = statement
            yield verdict(
                False,
                pg_resource(database, f"{index.schema_name}.{index.name}"),
                "valid",
                f"INVALID (on {index.schema_name}.{index.table})",
                facts=facts,
            )
