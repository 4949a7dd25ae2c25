"""Catalog SQL the PostgreSQL collector runs: a fixed set, whatever the schema's size.

Every query reads catalogs or statistics views once for the whole database (schemas in
scope are an array parameter), so the number of queries never grows with the number of
tables or indexes. Only the retention, soft-delete and expired-fact counts touch user tables
(one query per table a rule names), and they count rows (never read them) with a range
predicate on the age column that an index can serve.
Nothing here writes or creates anything: the session is read-only besides.

The audited database's owner is not trusted, so nothing here may resolve to an object of
theirs:

- every catalog relation, function and type is qualified with ``pg_catalog``; parameters are
  cast to the built-in's argument type (``$1::integer``), so a better-matching overload the
  owner created elsewhere is never a candidate (and the session's ``search_path`` is
  ``pg_catalog`` besides, verified before anything is read);
- operators in catalog queries compare built-in types and are left unqualified for
  readability: with the verified ``search_path=pg_catalog`` they resolve in ``pg_catalog``
  only (the temporary schema is never searched for operators or functions);
- where a column of a user table is compared, the operator is spelled
  ``OPERATOR(pg_catalog.<)``, and the collector first checks that the column's type is a
  built-in date/time type (an owner-defined type could bring its own casts);
- ``unnest`` of several arrays is written ``ROWS FROM (pg_catalog.unnest(a), ...)``:
  PostgreSQL only expands the multi-argument form when the name is unqualified.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

# pgvector's column types; an index over one of them is a vector index whatever its method.
VECTOR_TYPES = ("vector", "halfvec", "sparsevec")
# pgvector's index methods (README "Indexing") and Azure's pg_diskann (access method diskann,
# https://learn.microsoft.com/azure/postgresql/flexible-server/how-to-use-pgdiskann).
VECTOR_METHODS = ("hnsw", "ivfflat", "diskann")
# Built-in types a retention age column may have: compared with pg_catalog's operators only.
AGE_TYPES = ("timestamptz", "timestamp", "date")


def settings_in_force(names: Sequence[str]) -> sql.Composed:
    """One row: ``current_setting(name)`` for each name, read in the collection transaction."""
    columns = [
        sql.SQL("pg_catalog.current_setting({}) AS {}").format(
            sql.Literal(name), sql.Identifier(name)
        )
        for name in names
    ]
    return sql.SQL("SELECT {}").format(sql.SQL(", ").join(columns))


# Which of the policy's schemas exist: a scope naming none of the database's schemas must not
# read as "no tables, nothing wrong".
SCHEMAS_IN_SCOPE = """
SELECT s.name AS schema_name,
       n.oid IS NOT NULL AS found
FROM pg_catalog.unnest(%(schemas)s::pg_catalog.text[]) WITH ORDINALITY AS s(name, position)
LEFT JOIN pg_catalog.pg_namespace AS n ON n.nspname = s.name
ORDER BY s.position
"""

SERVER = """
SELECT pg_catalog.current_setting('server_version_num')::integer AS server_version_num,
       pg_catalog.current_setting('server_version') AS server_version,
       pg_catalog.pg_database_size(pg_catalog.current_database()) AS database_size_bytes
"""

SETTINGS = "SELECT s.name, s.setting, s.unit, s.source FROM pg_catalog.pg_settings AS s"

# Every client backend with its TLS state; the checker's own row is marked so it is
# reported apart. Without pg_read_all_stats other roles' rows come back with NULL
# backend_type and ssl: they are returned as ``hidden`` so the collector can say so.
SESSIONS = """
SELECT a.pid,
       a.pid = pg_catalog.pg_backend_pid() AS own,
       a.backend_type IS NULL AS hidden,
       coalesce(a.state, 'unknown') AS state,
       a.usename::pg_catalog.text AS usename,
       a.application_name,
       pg_catalog.host(a.client_addr) AS client_addr,
       a.backend_type,
       s.ssl,
       s.version AS tls_version,
       s.cipher
FROM pg_catalog.pg_stat_activity AS a
LEFT JOIN pg_catalog.pg_stat_ssl AS s ON s.pid = a.pid
WHERE a.backend_type = 'client backend' OR a.backend_type IS NULL
ORDER BY a.pid
"""

# Without pg_read_all_stats another role's vacuum (autovacuum's included) shows only its pid:
# relid, phase and the start times are NULL. Such rows are returned as ``hidden``.
VACUUMS = """
SELECT p.pid,
       p.relid IS NULL AS hidden,
       p.relid,
       n.nspname::pg_catalog.text AS schema_name,
       c.relname::pg_catalog.text AS table_name,
       p.phase,
       EXTRACT(epoch FROM pg_catalog.clock_timestamp()
               - coalesce(a.xact_start, a.query_start, a.backend_start))::pg_catalog.float8
           AS age_seconds
FROM pg_catalog.pg_stat_progress_vacuum AS p
LEFT JOIN pg_catalog.pg_stat_activity AS a ON a.pid = p.pid
LEFT JOIN pg_catalog.pg_class AS c ON c.oid = p.relid
LEFT JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE p.datname = pg_catalog.current_database()
ORDER BY p.pid
"""

EXTENSIONS = """
SELECT e.extname::pg_catalog.text AS name,
       e.extversion AS version,
       n.nspname::pg_catalog.text AS schema_name,
       av.default_version
FROM pg_catalog.pg_extension AS e
JOIN pg_catalog.pg_namespace AS n ON n.oid = e.extnamespace
LEFT JOIN pg_catalog.pg_available_extensions AS av ON av.name = e.extname
ORDER BY e.extname
"""

VECTOR_COLUMNS = """
SELECT n.nspname::pg_catalog.text AS schema_name,
       c.relname::pg_catalog.text AS table_name,
       a.attname::pg_catalog.text AS column_name,
       t.typname::pg_catalog.text AS type_name,
       CASE WHEN a.atttypmod > 0 THEN a.atttypmod END AS dimensions
FROM pg_catalog.pg_attribute AS a
JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type AS t ON t.oid = a.atttypid
WHERE t.typname = ANY(%(vector_types)s::pg_catalog.name[])
  AND c.relkind IN ('r', 'p', 'm')
  AND a.attnum > 0
  AND NOT a.attisdropped
  AND n.nspname = ANY(%(schemas)s::pg_catalog.name[])
ORDER BY 1, 2, a.attnum
"""

# Key columns come from pg_get_indexdef(index, k) so expression indexes show their
# expression; opclasses follow ``indclass`` in key order. ``table_columns`` names the table's
# columns the index is built on, by attribute number, never by parsing text: the key columns
# of ``pg_index.indkey`` (attnum > 0), and for an index with expressions (attnum 0 in indkey,
# e.g. ``USING hnsw ((embedding::halfvec(1536)) halfvec_cosine_ops)``) the columns PostgreSQL
# recorded as the index's dependencies in ``pg_depend`` (index_create() records one per column
# its expressions and predicate use; pgvector's methods have no INCLUDE columns).
VECTOR_INDEXES = """
SELECT n.nspname::pg_catalog.text AS schema_name,
       t.relname::pg_catalog.text AS table_name,
       i.relname::pg_catalog.text AS index_name,
       am.amname::pg_catalog.text AS method,
       x.indisvalid AS valid,
       i.reloptions,
       ARRAY(SELECT pg_catalog.pg_get_indexdef(x.indexrelid, k, true)
             FROM pg_catalog.generate_series(1, x.indnkeyatts::integer) AS k
             ORDER BY k) AS columns,
       ARRAY(SELECT opc.opcname::pg_catalog.text
             FROM pg_catalog.unnest(x.indclass::pg_catalog.oid[]) WITH ORDINALITY AS u(opclass, k)
             JOIN pg_catalog.pg_opclass AS opc ON opc.oid = u.opclass
             ORDER BY u.k) AS opclasses,
       ARRAY(SELECT a.attname::pg_catalog.text
             FROM pg_catalog.pg_attribute AS a
             WHERE a.attrelid = x.indrelid
               AND a.attnum > 0
               AND NOT a.attisdropped
               AND (a.attnum IN (SELECT u.attnum
                                 FROM pg_catalog.unnest(x.indkey::pg_catalog.int2[])
                                      WITH ORDINALITY AS u(attnum, k)
                                 WHERE u.k <= x.indnkeyatts)
                    OR (x.indexprs IS NOT NULL
                        AND EXISTS (SELECT 1
                                    FROM pg_catalog.pg_depend AS d
                                    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                      AND d.objid = x.indexrelid
                                      AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                      AND d.refobjid = x.indrelid
                                      AND d.refobjsubid = a.attnum)))
             ORDER BY a.attnum) AS table_columns
FROM pg_catalog.pg_index AS x
JOIN pg_catalog.pg_class AS i ON i.oid = x.indexrelid
JOIN pg_catalog.pg_class AS t ON t.oid = x.indrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = t.relnamespace
JOIN pg_catalog.pg_am AS am ON am.oid = i.relam
WHERE n.nspname = ANY(%(schemas)s::pg_catalog.name[])
  AND (am.amname = ANY(%(vector_methods)s::pg_catalog.name[])
       OR EXISTS (SELECT 1
                  FROM pg_catalog.pg_attribute AS ia
                  JOIN pg_catalog.pg_type AS it ON it.oid = ia.atttypid
                  WHERE ia.attrelid = x.indexrelid
                    AND it.typname = ANY(%(vector_types)s::pg_catalog.name[])))
ORDER BY 1, 2, 3
"""

# The definition (pg_get_indexdef: "CREATE [UNIQUE] INDEX name ON schema.table USING ...",
# the table qualified whatever the search_path, ruleutils.c pg_get_indexdef_worker) is shown
# in the fix that drops the index, as a commented statement to re-create it.
INVALID_INDEXES = """
SELECT n.nspname::pg_catalog.text AS schema_name,
       t.relname::pg_catalog.text AS table_name,
       i.relname::pg_catalog.text AS index_name,
       pg_catalog.pg_get_indexdef(x.indexrelid) AS definition
FROM pg_catalog.pg_index AS x
JOIN pg_catalog.pg_class AS i ON i.oid = x.indexrelid
JOIN pg_catalog.pg_class AS t ON t.oid = x.indrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = t.relnamespace
WHERE NOT x.indisvalid
  AND n.nspname = ANY(%(schemas)s::pg_catalog.name[])
ORDER BY 1, 2, 3
"""

TABLES = """
SELECT s.schemaname::pg_catalog.text AS schema_name,
       s.relname::pg_catalog.text AS table_name,
       s.n_live_tup,
       s.n_dead_tup,
       s.last_vacuum,
       s.last_autovacuum,
       s.last_analyze,
       s.last_autoanalyze,
       c.reloptions,
       toast.reloptions AS toast_reloptions
FROM pg_catalog.pg_stat_all_tables AS s
JOIN pg_catalog.pg_class AS c ON c.oid = s.relid
LEFT JOIN pg_catalog.pg_class AS toast ON toast.oid = c.reltoastrelid
WHERE s.schemaname = ANY(%(schemas)s::pg_catalog.name[])
  AND c.relkind IN ('r', 'p', 'm')
ORDER BY 1, 2
"""

STATEMENTS_LIMIT = 200


def statements(extension_schema: str, mean_column: str) -> sql.Composed:
    """Slowest statements of this database by mean time, and how many rows are hidden.

    Without pg_read_all_stats, pg_stat_statements shows other roles' statements with a NULL
    ``queryid`` (and no text): ``hidden`` counts them over the whole view, before the LIMIT.
    ``mean_column`` is ``mean_exec_time`` from pg_stat_statements 1.8 (PostgreSQL 13) on,
    ``mean_time`` before; 16, 17 and 18 all use the former.
    """
    return sql.SQL(
        """
SELECT s.queryid::pg_catalog.text AS queryid,
       s.calls,
       s.{mean}::pg_catalog.float8 AS mean_ms,
       pg_catalog.left(s.query, 500) AS query,
       pg_catalog.count(*) FILTER (WHERE s.queryid IS NULL) OVER () AS hidden
FROM {schema}.pg_stat_statements AS s
WHERE s.dbid = (SELECT d.oid
                FROM pg_catalog.pg_database AS d
                WHERE d.datname = pg_catalog.current_database())
ORDER BY s.{mean} DESC NULLS LAST, s.queryid
LIMIT {limit}
"""
    ).format(
        mean=sql.Identifier(mean_column),
        schema=sql.Identifier(extension_schema),
        limit=sql.Literal(STATEMENTS_LIMIT),
    )


# What the counts are about to touch, for every (schema, table, column) a count needs: the
# relation's kind and each column's type, so a view, a missing column or an owner-defined type
# is reported instead of counted.
RELATION_COLUMNS = """
SELECT q.position,
       q.column_name,
       c.oid IS NOT NULL AS relation_found,
       c.relkind::pg_catalog.text AS relkind,
       a.attnum IS NOT NULL AS column_found,
       tn.nspname::pg_catalog.text AS type_schema,
       ty.typname::pg_catalog.text AS type_name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type_shown
FROM ROWS FROM (pg_catalog.unnest(%(schemas)s::pg_catalog.text[]),
                pg_catalog.unnest(%(tables)s::pg_catalog.text[]),
                pg_catalog.unnest(%(columns)s::pg_catalog.text[]))
     WITH ORDINALITY AS q(schema_name, table_name, column_name, position)
LEFT JOIN pg_catalog.pg_namespace AS n ON n.nspname = q.schema_name
LEFT JOIN pg_catalog.pg_class AS c ON c.relnamespace = n.oid AND c.relname = q.table_name
LEFT JOIN pg_catalog.pg_attribute AS a
       ON a.attrelid = c.oid AND a.attname = q.column_name AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_type AS ty ON ty.oid = a.atttypid
LEFT JOIN pg_catalog.pg_namespace AS tn ON tn.oid = ty.typnamespace
ORDER BY q.position
"""


def _older_than(column: sql.Composable, days: sql.Composable) -> sql.Composed:
    """``column < now() - make_interval(days => days)`` with pg_catalog's operators.

    ``OPERATOR(...)`` binds like any other operator, left to right: the right side is
    parenthesised so ``<`` compares with the difference.
    """
    return sql.SQL(
        "{column} OPERATOR(pg_catalog.<) "
        "(pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(days => {days}))"
    ).format(column=column, days=days)


def _live(deleted_column: str | None) -> sql.Composable:
    """``AND r.<deleted> IS NULL``: a soft-deleted row is not an active one. ``IS NULL`` is a
    construct, not an operator, so no object of the owner's can change what it means."""
    if deleted_column is None:
        return sql.SQL("")
    return sql.SQL(" AND r.{} IS NULL").format(sql.Identifier(deleted_column))


def rows_past_age(
    schema: str,
    table: str,
    age_column: str,
    tenant_column: str | None,
    deleted_column: str | None = None,
) -> sql.Composed:
    """Live rows older than their tenant's limit, counted per tenant (or in total).

    The first predicate (the smallest limit) is a plain range on the age column, so an
    index on it bounds the scan; the per-tenant limit then refines the count. Rows whose
    ``deleted_column`` is set are soft-deleted and left out.
    """
    relation = sql.Identifier(schema, table)
    if tenant_column is None:
        return sql.SQL(
            "SELECT NULL::pg_catalog.text AS tenant, pg_catalog.count(*) AS rows "
            "FROM {relation} AS r WHERE {older}{live}"
        ).format(
            relation=relation,
            older=_older_than(
                sql.SQL("r.{}").format(sql.Identifier(age_column)),
                sql.SQL("%(default_days)s::integer"),
            ),
            live=_live(deleted_column),
        )
    age = sql.SQL("r.{}").format(sql.Identifier(age_column))
    tenant = sql.SQL("r.{}::pg_catalog.text").format(sql.Identifier(tenant_column))
    return sql.SQL(
        """
SELECT {tenant} AS tenant, pg_catalog.count(*) AS rows
FROM {relation} AS r
LEFT JOIN ROWS FROM (pg_catalog.unnest(%(tenants)s::pg_catalog.text[]),
                     pg_catalog.unnest(%(tenant_days)s::integer[])) AS o(tenant, days)
       ON o.tenant OPERATOR(pg_catalog.=) {tenant}
WHERE {older_than_any}
  AND {older_than_own}{live}
GROUP BY 1
ORDER BY 1 NULLS FIRST
LIMIT 1000
"""
    ).format(
        relation=relation,
        tenant=tenant,
        older_than_any=_older_than(age, sql.SQL("%(min_days)s::integer")),
        older_than_own=_older_than(age, sql.SQL("coalesce(o.days, %(default_days)s::integer)")),
        live=_live(deleted_column),
    )


def soft_deleted_rows(schema: str, table: str, deleted_column: str) -> sql.Composed:
    """Rows whose ``deleted_column`` is set, and how many of them were set more than
    ``%(seconds)s`` ago (what a purge job that runs should have removed)."""
    deleted = sql.SQL("r.{}").format(sql.Identifier(deleted_column))
    return sql.SQL(
        "SELECT pg_catalog.count(*) AS soft_deleted, "
        "pg_catalog.count(*) FILTER (WHERE {deleted} OPERATOR(pg_catalog.<) "
        "(pg_catalog.now() OPERATOR(pg_catalog.-) "
        "pg_catalog.make_interval(secs => %(seconds)s::pg_catalog.float8))) AS stale "
        "FROM {relation} AS r WHERE {deleted} IS NOT NULL"
    ).format(relation=sql.Identifier(schema, table), deleted=deleted)


def expired_rows(schema: str, table: str, valid_to_column: str) -> sql.Composed:
    return sql.SQL(
        "SELECT pg_catalog.count(*) AS rows FROM {relation} AS r "
        "WHERE r.{valid_to} OPERATOR(pg_catalog.<) pg_catalog.now()"
    ).format(relation=sql.Identifier(schema, table), valid_to=sql.Identifier(valid_to_column))
