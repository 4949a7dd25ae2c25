"""Checks on installed extensions: pgvector and pg_stat_statements."""

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
    verdict,
)
from engram_audit.checks.postgres.common import each_database, version_tuple
from engram_audit.model.base import Source
from engram_audit.model.snapshot import Extension, PostgresDatabase


def _installed(database: PostgresDatabase, name: str) -> Extension | None:
    return next((e for e in database.extensions or () if e.name == name and e.version), None)


class VectorExtensionParams(Params):
    min_version: str = Field(
        default="0.5.0", description="Oldest acceptable pgvector (HNSW needs 0.5.0)"
    )
    require_latest: bool = Field(
        default=False, description="Installed must equal the newest available"
    )


@check(
    "pg.extension.vector",
    sources=[Source.POSTGRES],
    params=VectorExtensionParams,
    reads=("postgres.extensions",),
)
def pg_extension_vector(params: VectorExtensionParams, context: CheckContext) -> Iterator[Outcome]:
    """pgvector is installed in the Zep database, at or above the minimum version.

    Zep stores embeddings in `vector` columns; HNSW indexes need pgvector 0.5.0 or later, and
    newer releases fix index build and recall bugs.

    Remediation: `CREATE EXTENSION IF NOT EXISTS vector;` or `ALTER EXTENSION vector UPDATE;` in
    database zep (after allow-listing it in `azure.extensions`).
    """
    expected = f"installed, >= {params.min_version}" + (
        ", newest available" if params.require_latest else ""
    )
    for database in each_database(context):
        resource = pg_resource(database)
        if database.extensions is None:
            yield pg_not_collected(context, database, "extensions", expected)
            continue
        vector = _installed(database, "vector")
        if vector is None or vector.version is None:
            yield verdict(False, resource, expected, "not installed")
            continue
        problems = []
        if version_tuple(vector.version) < version_tuple(params.min_version):
            problems.append(f"{vector.version} is older than {params.min_version}")
        newest = vector.default_version
        if (
            params.require_latest
            and newest
            and version_tuple(vector.version) < version_tuple(newest)
        ):
            problems.append(f"{newest} is available")
        actual = vector.version + (f" (newest available {newest})" if newest else "")
        yield verdict(not problems, resource, expected, actual, "; ".join(problems))


class StatStatementsParams(Params):
    required: bool = True


@check(
    "pg.extension.pg_stat_statements",
    sources=[Source.POSTGRES],
    params=StatStatementsParams,
    reads=("postgres.extensions",),
)
def pg_extension_pg_stat_statements(
    params: StatStatementsParams, context: CheckContext
) -> Iterator[Outcome]:
    """pg_stat_statements is installed in the Zep database when the policy requires it.

    Preloading the library is not enough: the extension must exist in the database for its view
    to be queryable, otherwise slow-query monitoring has no data.

    Remediation: `CREATE EXTENSION IF NOT EXISTS pg_stat_statements;` in database zep.
    """
    expected = "installed" if params.required else "optional"
    for database in each_database(context):
        resource = pg_resource(database)
        if database.extensions is None:
            yield pg_not_collected(context, database, "extensions", expected)
            continue
        extension = _installed(database, "pg_stat_statements")
        actual = f"installed {extension.version}" if extension else "not installed"
        yield verdict(extension is not None or not params.required, resource, expected, actual)
