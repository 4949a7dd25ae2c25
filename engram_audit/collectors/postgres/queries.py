"""Catalog SQL the PostgreSQL collector runs: a fixed set, whatever the schema's size.

Every query reads catalogs or statistics views once for the whole database (schemas in
scope are an array parameter), so the number of queries never grows with the number of
tables or indexes. Only the two retention counts touch user tables, and they count rows
(never read them) with a range predicate on the age column that an index can serve.
Nothing here writes or creates anything: the session is read-only besides.
"""

from __future__ import annotations

from psycopg import sql

# pgvector's column types; an index over one of them is a vector index whatever its method.
VECTOR_TYPES = ("vector", "halfvec", "sparsevec")
VECTOR_METHODS = ("hnsw", "ivfflat")

SERVER = """
SELECT current_setting('server_version_num')::int AS server_version_num,
       current_setting('server_version') AS server_version,
       pg_database_size(current_database()) AS database_size_bytes
"""

SETTINGS = "SELECT name, setting, unit, source FROM pg_settings"

# Every client backend with its TLS state; the checker's own row is marked so it is
# reported apart. Without pg_read_all_stats other roles' rows come back with NULL
# backend_type and ssl: they are returned as ``hidden`` so the collector can say so.
SESSIONS = """
SELECT a.pid,
       a.pid = pg_backend_pid() AS own,
       a.backend_type IS NULL AS hidden,
       coalesce(a.state, 'unknown') AS state,
       a.usename::text AS usename,
       a.application_name,
       host(a.client_addr) AS client_addr,
       a.backend_type,
       s.ssl,
       s.version AS tls_version,
       s.cipher
FROM pg_stat_activity AS a
LEFT JOIN pg_stat_ssl AS s ON s.pid = a.pid
WHERE a.backend_type = 'client backend' OR a.backend_type IS NULL
ORDER BY a.pid
"""

VACUUMS = """
SELECT p.pid,
       coalesce(p.relid::regclass::text, p.relid::text) AS relation,
       p.phase,
       extract(epoch FROM clock_timestamp()
               - coalesce(a.xact_start, a.query_start, a.backend_start))::float8 AS age_seconds
FROM pg_stat_progress_vacuum AS p
LEFT JOIN pg_stat_activity AS a ON a.pid = p.pid
WHERE p.datname = current_database()
ORDER BY p.pid
"""

EXTENSIONS = """
SELECT e.extname::text AS name,
       e.extversion AS version,
       n.nspname::text AS schema_name,
       av.default_version
FROM pg_extension AS e
JOIN pg_namespace AS n ON n.oid = e.extnamespace
LEFT JOIN pg_available_extensions AS av ON av.name = e.extname
ORDER BY e.extname
"""

VECTOR_COLUMNS = """
SELECT n.nspname::text AS schema_name,
       c.relname::text AS table_name,
       a.attname::text AS column_name,
       t.typname::text AS type_name,
       CASE WHEN a.atttypmod > 0 THEN a.atttypmod END AS dimensions
FROM pg_attribute AS a
JOIN pg_class AS c ON c.oid = a.attrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_type AS t ON t.oid = a.atttypid
WHERE t.typname = ANY(%(vector_types)s)
  AND c.relkind IN ('r', 'p', 'm')
  AND a.attnum > 0
  AND NOT a.attisdropped
  AND n.nspname = ANY(%(schemas)s)
ORDER BY 1, 2, a.attnum
"""

# Key columns come from pg_get_indexdef(index, k) so expression indexes show their
# expression; opclasses follow ``indclass`` in key order.
VECTOR_INDEXES = """
SELECT n.nspname::text AS schema_name,
       t.relname::text AS table_name,
       i.relname::text AS index_name,
       am.amname::text AS method,
       x.indisvalid AS valid,
       i.reloptions,
       ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
             FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k) AS columns,
       ARRAY(SELECT opc.opcname::text
             FROM unnest(x.indclass::oid[]) WITH ORDINALITY AS u(opclass, k)
             JOIN pg_opclass AS opc ON opc.oid = u.opclass
             ORDER BY u.k) AS opclasses
FROM pg_index AS x
JOIN pg_class AS i ON i.oid = x.indexrelid
JOIN pg_class AS t ON t.oid = x.indrelid
JOIN pg_namespace AS n ON n.oid = t.relnamespace
JOIN pg_am AS am ON am.oid = i.relam
WHERE n.nspname = ANY(%(schemas)s)
  AND (am.amname = ANY(%(vector_methods)s)
       OR EXISTS (SELECT 1
                  FROM pg_attribute AS ia
                  JOIN pg_type AS it ON it.oid = ia.atttypid
                  WHERE ia.attrelid = x.indexrelid AND it.typname = ANY(%(vector_types)s)))
ORDER BY 1, 2, 3
"""

INVALID_INDEXES = """
SELECT n.nspname::text AS schema_name,
       t.relname::text AS table_name,
       i.relname::text AS index_name
FROM pg_index AS x
JOIN pg_class AS i ON i.oid = x.indexrelid
JOIN pg_class AS t ON t.oid = x.indrelid
JOIN pg_namespace AS n ON n.oid = t.relnamespace
WHERE NOT x.indisvalid
  AND n.nspname = ANY(%(schemas)s)
ORDER BY 1, 2, 3
"""

TABLES = """
SELECT s.schemaname::text AS schema_name,
       s.relname::text AS table_name,
       s.n_live_tup,
       s.n_dead_tup,
       s.last_vacuum,
       s.last_autovacuum,
       s.last_analyze,
       s.last_autoanalyze,
       c.reloptions
FROM pg_stat_all_tables AS s
JOIN pg_class AS c ON c.oid = s.relid
WHERE s.schemaname = ANY(%(schemas)s)
  AND c.relkind IN ('r', 'p', 'm')
ORDER BY 1, 2
"""

STATEMENTS_LIMIT = 200


def statements(extension_schema: str, mean_column: str) -> sql.Composed:
    """Slowest statements of this database by mean time.

    ``mean_column`` is ``mean_exec_time`` from pg_stat_statements 1.8 (PostgreSQL 13) on,
    ``mean_time`` before; 16, 17 and 18 all use the former.
    """
    return sql.SQL(
        """
SELECT s.queryid::text AS queryid,
       s.calls,
       s.{mean}::float8 AS mean_ms,
       left(s.query, 500) AS query
FROM {schema}.pg_stat_statements AS s
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND s.queryid IS NOT NULL
ORDER BY s.{mean} DESC NULLS LAST, s.queryid
LIMIT {limit}
"""
    ).format(
        mean=sql.Identifier(mean_column),
        schema=sql.Identifier(extension_schema),
        limit=sql.Literal(STATEMENTS_LIMIT),
    )


def rows_past_age(
    schema: str, table: str, age_column: str, tenant_column: str | None
) -> sql.Composed:
    """Rows older than their tenant's limit, counted per tenant (or in total).

    The first predicate (the smallest limit) is a plain range on the age column, so an
    index on it bounds the scan; the per-tenant limit then refines the count.
    """
    relation = sql.Identifier(schema, table)
    age = sql.Identifier(age_column)
    if tenant_column is None:
        return sql.SQL(
            "SELECT NULL::text AS tenant, count(*) AS rows FROM {relation} "
            "WHERE {age} < now() - make_interval(days => %(default_days)s)"
        ).format(relation=relation, age=age)
    tenant = sql.Identifier(tenant_column)
    return sql.SQL(
        """
SELECT r.{tenant}::text AS tenant, count(*) AS rows
FROM {relation} AS r
LEFT JOIN unnest(%(tenants)s::text[], %(tenant_days)s::int[]) AS o(tenant, days)
       ON o.tenant = r.{tenant}::text
WHERE r.{age} < now() - make_interval(days => %(min_days)s)
  AND r.{age} < now() - make_interval(days => coalesce(o.days, %(default_days)s))
GROUP BY 1
ORDER BY 1 NULLS FIRST
LIMIT 1000
"""
    ).format(relation=relation, age=age, tenant=tenant)


def expired_rows(schema: str, table: str, valid_to_column: str) -> sql.Composed:
    return sql.SQL("SELECT count(*) AS rows FROM {relation} WHERE {valid_to} < now()").format(
        relation=sql.Identifier(schema, table), valid_to=sql.Identifier(valid_to_column)
    )
