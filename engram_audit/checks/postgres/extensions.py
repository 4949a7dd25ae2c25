"""Checks on installed extensions: pgvector and pg_stat_statements."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field

from engram_audit.checks.base import (
    CheckContext,
    Outcome,
    Params,
    check,
    pg_facts,
    pg_not_collected,
    pg_resource,
    verdict,
)
from engram_audit.checks.postgres.azure_reference import extension_offer
from engram_audit.checks.postgres.common import each_database, version_key
from engram_audit.model.base import Source
from engram_audit.model.snapshot import Extension, PostgresDatabase


def _installed(database: PostgresDatabase, name: str) -> Extension | None:
    return next((e for e in database.extensions or () if e.name == name and e.version), None)


def _major(database: PostgresDatabase) -> int | None:
    number = database.server_version_num
    return number // 10000 if number else None


def _not_installed_note(name: str, major: int | None) -> str:
    """Why CREATE EXTENSION may not even be possible on Azure at this major version."""
    offer = extension_offer(name, major) if major is not None else None
    if offer is None:
        return ""
    if not offer.offered:
        return f"Azure does not offer {name} on PostgreSQL {major}"
    if offer.in_allow_list is False:
        return f"{name} is not in Azure's azure.extensions allow-list on PostgreSQL {major}"
    return f"Azure offers {name} {offer.version} on PostgreSQL {major}"


def _below_minimum(installed: str, minimum: str, name: str, major: int | None) -> str | None:
    """The problem when ``installed`` is older than ``minimum``, with what Azure offers."""
    if version_key(installed) >= version_key(minimum):
        return None
    problem = f"{installed} is older than {minimum}"
    offer = extension_offer(name, major) if major is not None else None
    if offer is None:
        return problem
    if offer.version is None:
        return f"{problem}; Azure does not offer {name} on PostgreSQL {major}"
    if version_key(offer.version) < version_key(minimum):
        return (
            f"{problem}; Azure offers {offer.version} on PostgreSQL {major}, below this minimum:"
            " no update reaches it on this major version"
        )
    return f"{problem}; Azure offers {offer.version} on PostgreSQL {major}: ALTER EXTENSION {name} UPDATE"


def _minimum_above_azure(minimum: str, name: str, major: int | None) -> str:
    """A note when the policy asks for more than Azure documents for this major version."""
    offer = extension_offer(name, major) if major is not None else None
    if offer is None or offer.version is None:
        return ""
    if version_key(offer.version) < version_key(minimum):
        return (
            f"the policy minimum {minimum} is above what Azure documents for PostgreSQL {major}"
            f" ({offer.version})"
        )
    return ""


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
    reads=("postgres.extensions", "postgres.server_version"),
    facts=("extension",),
)
def pg_extension_vector(params: VectorExtensionParams, context: CheckContext) -> Iterator[Outcome]:
    """pgvector is installed in the Zep database, at or above the minimum version.

    Zep stores embeddings in `vector` columns; HNSW indexes need pgvector 0.5.0 or later, and
    newer releases fix index build and recall bugs. Versions compare part by part with missing
    parts as zeros (`0.5` is `0.5.0`). Azure installs one pgvector version per PostgreSQL major
    version (Microsoft's extension table, shipped in `checks/postgres/data/extensions.json`:
    0.8.2 on 13-18, 0.7.0 on 12, 0.5.1 on 11): when the installed version is too old, the finding
    says what Azure offers on the server's major version, and when the policy minimum is above
    that, it says no `ALTER EXTENSION ... UPDATE` can reach it on this major version (the
    verdict stays FAIL: the server does not meet the policy).

    Remediation: `CREATE EXTENSION IF NOT EXISTS vector;` or `ALTER EXTENSION vector UPDATE;` in
    database zep (after allow-listing it in `azure.extensions`); a minimum above what Azure offers
    needs a major-version upgrade or a lower minimum.
    """
    expected = f"installed, >= {params.min_version}" + (
        ", newest available" if params.require_latest else ""
    )
    for database in each_database(context):
        resource = pg_resource(database)
        if database.extensions is None:
            yield pg_not_collected(context, database, "extensions", expected)
            continue
        major = _major(database)
        vector = _installed(database, "vector")
        if vector is None or vector.version is None:
            yield verdict(
                False,
                resource,
                expected,
                "not installed",
                _not_installed_note("vector", major),
                facts=pg_facts(database, extension="vector"),
            )
            continue
        problems = []
        below = _below_minimum(vector.version, params.min_version, "vector", major)
        if below:
            problems.append(below)
        newest = vector.default_version
        if params.require_latest and newest and version_key(vector.version) < version_key(newest):
            problems.append(f"{newest} is available")
        actual = vector.version + (f" (newest available {newest})" if newest else "")
        message = "; ".join(problems) or _minimum_above_azure(params.min_version, "vector", major)
        facts = pg_facts(database, extension="vector")
        yield verdict(not problems, resource, expected, actual, message, facts=facts)


class StatStatementsParams(Params):
    required: bool = True
    min_version: str | None = Field(
        default=None,
        description="Oldest acceptable pg_stat_statements (e.g. 1.8 for mean_exec_time)",
    )


@check(
    "pg.extension.pg_stat_statements",
    sources=[Source.POSTGRES],
    params=StatStatementsParams,
    reads=("postgres.extensions", "postgres.server_version"),
    facts=("extension",),
)
def pg_extension_pg_stat_statements(
    params: StatStatementsParams, context: CheckContext
) -> Iterator[Outcome]:
    """pg_stat_statements is installed in the Zep database when the policy requires it.

    Preloading the library is not enough: the extension must exist in the database for its view
    to be queryable, otherwise slow-query monitoring has no data. With `min_version` the
    installed version must be at least that (compared with missing parts as zeros); Azure's
    version is fixed per major version (1.10 on 16, 1.11 on 17, 1.12 on 18 ... from Microsoft's
    extension table), and the finding says so when the minimum is above it.

    Remediation: `CREATE EXTENSION IF NOT EXISTS pg_stat_statements;` in database zep.
    """
    expected = "installed" if params.required else "optional"
    if params.min_version:
        expected += f", >= {params.min_version}"
    for database in each_database(context):
        resource = pg_resource(database)
        if database.extensions is None:
            yield pg_not_collected(context, database, "extensions", expected)
            continue
        major = _major(database)
        extension = _installed(database, "pg_stat_statements")
        if extension is None or extension.version is None:
            note = "" if not params.required else _not_installed_note("pg_stat_statements", major)
            facts = pg_facts(database, extension="pg_stat_statements")
            yield verdict(
                not params.required, resource, expected, "not installed", note, facts=facts
            )
            continue
        actual = f"installed {extension.version}"
        below = (
            _below_minimum(extension.version, params.min_version, "pg_stat_statements", major)
            if params.min_version
            else None
        )
        message = below or (
            _minimum_above_azure(params.min_version, "pg_stat_statements", major)
            if params.min_version
            else ""
        )
        facts = pg_facts(database, extension="pg_stat_statements")
        yield verdict(below is None, resource, expected, actual, message, facts=facts)


class ExtensionInstalledParams(Params):
    name: str = Field(
        min_length=1, description="Extension name as pg_extension lists it, e.g. pgaudit"
    )
    min_version: str | None = Field(
        default=None, description="Oldest acceptable version (compared with missing parts as zeros)"
    )


@check(
    "pg.extension.installed",
    sources=[Source.POSTGRES],
    params=ExtensionInstalledParams,
    reads=("postgres.extensions", "postgres.server_version"),
    facts=("extension",),
)
def pg_extension_installed(
    params: ExtensionInstalledParams, context: CheckContext
) -> Iterator[Outcome]:
    """A named extension is installed (`CREATE EXTENSION` done) in the audited database.

    Some server features need the extension object as well as a server parameter: PgAudit logs
    with `pgaudit` only in `shared_preload_libraries`, but "CREATE EXTENSION pgaudit must be
    called before pgaudit.log is set": the extension installs the event triggers that give DDL
    audit records their object type and name (pgaudit's README). An extension available on the
    server but not created in the database is not installed. When it is missing the finding says
    what Azure offers for it on the server's major version (Microsoft's extension table, shipped
    in `checks/postgres/data/extensions.json`); with `min_version` an older version FAILs, saying
    whether `ALTER EXTENSION ... UPDATE` can reach the minimum on this major version.

    Remediation: allow-list the extension in `azure.extensions` (and preload it where it needs
    that), then `CREATE EXTENSION IF NOT EXISTS <name>;` in the database.
    """
    name = params.name.strip()
    expected = "installed" + (f", >= {params.min_version}" if params.min_version else "")
    for database in each_database(context):
        resource = pg_resource(database)
        if database.extensions is None:
            yield pg_not_collected(context, database, "extensions", expected)
            continue
        major = _major(database)
        folded = name.casefold()
        extension = next(
            (e for e in database.extensions if e.name.casefold() == folded and e.version), None
        )
        if extension is None or extension.version is None:
            note = _not_installed_note(name.lower(), major)
            facts = pg_facts(database, extension=name)
            yield verdict(False, resource, expected, f"{name} not installed", note, facts=facts)
            continue
        below = (
            _below_minimum(extension.version, params.min_version, name.lower(), major)
            if params.min_version
            else None
        )
        message = below or (
            _minimum_above_azure(params.min_version, name.lower(), major)
            if params.min_version
            else ""
        )
        facts = pg_facts(database, extension=extension.name)
        yield verdict(
            below is None,
            resource,
            expected,
            f"{name} {extension.version}",
            message,
            facts=facts,
        )
