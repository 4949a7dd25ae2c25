"""Collection cost against schema size: queries and wall time for 10 vs 10,000 tables.

Starts a throwaway PostgreSQL 18 + pgvector server, builds two databases (10 tables and
10,000 tables, a few hundred of them with a vector column and an HNSW index), collects
each a few times with the production plan and prints the figures.

    .venv/bin/python bench/pg_scale.py [--tables 10000] [--vector-tables 300] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import psycopg
from psycopg import sql

from engram_audit.collectors.postgres.collector import PostgresRequest, collect_postgres
from engram_audit.demo.server import EmbeddedPostgres
from engram_audit.model.plan import CollectionPlan, ExpiredFactsPlan, SessionRetentionPlan

BATCH = 250  # tables per transaction: keeps the lock table small


def progress(message: str) -> None:
    """Progress for a person at a terminal; CI logs and pipes get only the figures."""
    if sys.stderr.isatty():
        print(message, file=sys.stderr)


def build(admin_dsn: str, database: str, tables: int, vector_tables: int) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    with psycopg.connect(psycopg.conninfo.make_conninfo(admin_dsn, dbname=database)) as connection:
        connection.execute("CREATE EXTENSION vector")
        connection.execute("CREATE EXTENSION pg_stat_statements")
        connection.execute(
            "CREATE TABLE sessions (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, "
            "tenant_id text NOT NULL)"
        )
        connection.execute("CREATE INDEX ON sessions (created_at)")
        connection.execute("CREATE TABLE facts (id bigint PRIMARY KEY, valid_to timestamptz)")
        connection.execute("CREATE INDEX ON facts (valid_to)")
        connection.commit()
        for start in range(0, tables, BATCH):
            for number in range(start, min(start + BATCH, tables)):
                table = sql.Identifier(f"t_{number:05d}")
                if number < vector_tables:
                    connection.execute(
                        sql.SQL(
                            "CREATE TABLE {} (id bigint PRIMARY KEY, body text, "
                            "embedding vector(1536))"
                        ).format(table)
                    )
                    connection.execute(
                        sql.SQL(
                            "CREATE INDEX ON {} USING hnsw (embedding vector_cosine_ops) "
                            "WITH (m = 16, ef_construction = 64)"
                        ).format(table)
                    )
                else:
                    connection.execute(
                        sql.SQL(
                            "CREATE TABLE {} (id bigint PRIMARY KEY, body text, "
                            "created_at timestamptz)"
                        ).format(table)
                    )
            connection.commit()
            progress(f"  {database}: {min(start + BATCH, tables)}/{tables} tables")
        connection.execute("ANALYZE")
        connection.commit()


def measure(dsn: str, database: str, runs: int) -> tuple[int, int, int, float, float]:
    plan = CollectionPlan(
        environment="bench",
        database=database,
        retention=(SessionRetentionPlan(tenant_column="tenant_id"),),
        expired_facts=ExpiredFactsPlan(),
    )
    timings: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        collection = collect_postgres(PostgresRequest(dsn=dsn), plan)
        timings.append(time.perf_counter() - started)
        if collection.issues:
            raise SystemExit(f"collection of {database} had issues: {collection.issues}")
    [result] = collection.section.databases
    tables = len(result.tables or ())
    indexes = len(result.vector_indexes or ())
    return collection.queries, tables, indexes, min(timings), statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--vector-tables", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    progress("starting PostgreSQL 18 + pgvector ...")
    with EmbeddedPostgres(
        preload_libraries=("pg_stat_statements",), settings={"max_locks_per_transaction": "1024"}
    ) as server:
        sizes = (
            ("bench_small", 10, min(3, arguments.vector_tables)),
            ("bench_large", arguments.tables, arguments.vector_tables),
        )
        build_seconds: dict[str, float] = {}
        for database, tables, vector_tables in sizes:
            started = time.perf_counter()
            build(server.dsn, database, tables, vector_tables)
            build_seconds[database] = time.perf_counter() - started
        print(
            f"{'database':<12} {'tables':>7} {'vector idx':>10} {'queries':>8} "
            f"{'best s':>7} {'median s':>9} {'build s':>8}"
        )
        for database, _tables, _vectors in sizes:
            queries, tables, indexes, best, median = measure(
                server.dsn_for(database), database, arguments.runs
            )
            print(
                f"{database:<12} {tables:>7} {indexes:>10} {queries:>8} "
                f"{best:>7.3f} {median:>9.3f} {build_seconds[database]:>8.1f}"
            )


if __name__ == "__main__":
    main()
