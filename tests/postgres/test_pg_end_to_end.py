"""The issue's "Done when": the real CLI against a seeded database it has never seen.

``engram-audit check --env prod --sources postgres --dsn ...`` must report each planted
problem with the right resource, exit 1, and never show the DSN's password: not on stdout,
stderr, in any report format, nor in the saved snapshot. Unreachable servers exit 3 with one
line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg

from engram_audit.demo.server import free_loopback_port
from engram_audit.reporters.console import short_resource
from tests.support.cli import run_in_process
from tests.support.pg_servers import AUDITOR_PASSWORD, SeededServer

FORMATS = ("json", "sarif", "junit", "markdown")


def engram_audit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engram_audit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).parents[2],
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )


def test_check_reports_every_planted_problem_and_hides_the_password(
    pg: SeededServer, tmp_path: Path
) -> None:
    port = pg.server.port
    # A URI to the "postgres" database, as Azure's portal gives it: the policy picks zep.
    dsn = f"postgresql://auditor:{AUDITOR_PASSWORD}@127.0.0.1:{port}/postgres?sslmode=" + (
        f"verify-full&sslrootcert={pg.ca_pem}" if pg.kind.tls else "disable"
    )
    outputs = [f"{fmt}:{tmp_path / ('report.' + fmt)}" for fmt in FORMATS]
    with psycopg.connect(pg.app_dsn(tls=False), application_name="zep-api"):
        result = engram_audit(
            "check", "--env", "prod", "--sources", "postgres", "--dsn", dsn,
            "--save-snapshot", str(tmp_path / "snapshot.json"),
            *[arg for spec in outputs for arg in ("-o", spec)],
        )  # fmt: skip
    # Without pg_stat_statements (the PG16 build) pg.queries.slow is SKIP with the reason and
    # the run is still complete: the planted problems make it exit 1 on every server.
    assert result.returncode == 1, result.stderr

    written = {path.name: path.read_text(encoding="utf-8") for path in tmp_path.iterdir()}
    assert set(written) == {"snapshot.json", *(f"report.{fmt}" for fmt in FORMATS)}
    for name, text in {"stdout": result.stdout, "stderr": result.stderr, **written}.items():
        assert AUDITOR_PASSWORD not in text, f"password leaked into {name}"

    report = json.loads(written["report.json"])
    failed = {
        (finding["rule"], finding["resource"])
        for finding in report["findings"]
        if finding["status"] == "fail"
    }
    base = f"postgresql://127.0.0.1:{port}/zep"
    planted = {
        ("ZEP-PG-INDEX-VALID", f"{base}/public.sessions_user_id_unique_idx"),
        ("ZEP-PG-TLS-CLIENTS", base),
        # Retention findings name the schema the collector counted in (schema_name).
        ("ZEP-PG-SESSION-RETENTION", f"{base}/public.sessions"),
        ("ZEP-PG-AUTOVACUUM", f"{base}/public.messages"),
        ("ZEP-PG-EXPIRED-FACTS", f"{base}/public.facts"),
    }
    if pg.kind.vector_version is not None:
        planted |= {
            ("ZEP-PG-VECTOR-INDEX", f"{base}/public.fact_embeddings.embedding"),  # IVFFlat
            ("ZEP-PG-VECTOR-INDEX", f"{base}/public.entity_embeddings.embedding"),  # m=4
            ("ZEP-PG-VECTOR-INDEX", f"{base}/public.summary_embeddings.embedding"),  # no index
        }
    else:
        planted.add(("ZEP-PG-VECTOR-EXTENSION", base))
    if not pg.kind.tls:
        planted.add(("ZEP-PG-TLS-SESSION", base))
    assert planted <= failed
    assert ("ZEP-PG-VECTOR-INDEX", f"{base}/public.message_embeddings.embedding") not in failed
    for rule, resource in planted:
        assert rule in result.stdout
        assert short_resource(resource) in result.stdout  # the console shortens, JSON keeps all
    assert "zep_app@127.0.0.1" in result.stdout

    snapshot = json.loads(written["snapshot.json"])
    [database] = snapshot["postgres"]["databases"]
    assert database["target"] == f"127.0.0.1:{port}/zep"
    assert database["settings"]["default_transaction_read_only"]["setting"] == "on"

    # The DSN named "postgres": which database was audited, and why, on stderr and in the report.
    said = "audited database 'zep', the policy's scope.database, not 'postgres'"
    assert said in result.stderr
    [note] = report["collection_notes"]
    assert said in note["note"] and note["part"] is None
    assert "COLLECTION NOTES (1)" in result.stdout


def test_an_unreachable_server_is_one_line_and_exit_3(tmp_path: Path) -> None:
    port = free_loopback_port()
    dsn = f"postgresql://auditor:{AUDITOR_PASSWORD}@127.0.0.1:{port}/zep"
    result = engram_audit("check", "--env", "prod", "--sources", "postgres", "--dsn", dsn)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert AUDITOR_PASSWORD not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if f"127.0.0.1:{port}/zep" in line]
    assert len(lines) == 1
    assert "Connection refused" in lines[0]


def test_a_scope_whose_schema_does_not_exist_is_incomplete_not_green(
    pg: SeededServer, tmp_path: Path
) -> None:
    """A typo in scope.schemas must not read as "no invalid index anywhere": exit 3."""
    policy = tmp_path / "prod.yaml"
    policy.write_text(
        "apiVersion: engram-audit/v1\n"
        "environment: prod\n"
        "scope: {database: zep, schemas: [zep_archive]}\n"
        "rules:\n"
        "  - {id: T-INDEX, check: pg.index.valid, severity: high, title: no invalid index}\n",
        encoding="utf-8",
    )
    result = engram_audit(
        "check", "--env", "prod", "--policy", str(policy), "--sources", "postgres",
        "--dsn", pg.auditor_dsn(tls=pg.kind.tls), "--format", "json",
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    [finding] = json.loads(result.stdout)["findings"]
    assert finding["status"] == "error"
    assert 'do not exist in database zep: "zep_archive"' in finding["message"]
    assert 'do not exist in database zep: "zep_archive"' in result.stderr


def test_allow_empty_accepts_a_scope_whose_schemas_do_not_exist(
    pg: SeededServer, tmp_path: Path
) -> None:
    """--allow-empty: the missing schema is an accepted empty scope, SKIP with the reason."""
    policy = tmp_path / "prod.yaml"
    policy.write_text(
        "apiVersion: engram-audit/v1\n"
        "environment: prod\n"
        "scope: {database: zep, schemas: [zep_archive]}\n"
        "rules:\n"
        "  - {id: T-INDEX, check: pg.index.valid, severity: high, title: no invalid index}\n"
        "  - {id: T-VACUUM, check: pg.autovacuum.recency, severity: high, title: vacuumed}\n",
        encoding="utf-8",
    )
    result = run_in_process(
        "check", "--env", "prod", "--policy", str(policy), "--sources", "postgres",
        "--dsn", pg.auditor_dsn(tls=pg.kind.tls), "--format", "json", "--allow-empty",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["collection_issues"] == []
    assert {f["rule"]: f["status"] for f in report["findings"]} == {
        "T-INDEX": "skip",
        "T-VACUUM": "skip",
    }
    for finding in report["findings"]:
        assert 'do not exist in database zep: "zep_archive"' in finding["message"]
        assert "--allow-empty accepts an empty scope" in finding["message"]
    assert {note["part"] for note in report["collection_notes"]} >= {"invalid_indexes", "tables"}
    assert "note: postgres" in result.stderr and "zep_archive" in result.stderr
    # From the environment too, as documented; and without it the run is incomplete.
    from_env = run_in_process(
        "check", "--env", "prod", "--policy", str(policy), "--sources", "postgres",
        "--dsn", pg.auditor_dsn(tls=pg.kind.tls), env={"ENGRAM_AUDIT_ALLOW_EMPTY": "1"},
    )  # fmt: skip
    assert from_env.returncode == 0, from_env.stderr
    strict = run_in_process(
        "check", "--env", "prod", "--policy", str(policy), "--sources", "postgres",
        "--dsn", pg.auditor_dsn(tls=pg.kind.tls),
    )  # fmt: skip
    assert strict.returncode == 3


def test_a_scope_database_that_does_not_exist_names_both_and_the_fix(
    pg: SeededServer, tmp_path: Path
) -> None:
    policy = tmp_path / "prod.yaml"
    policy.write_text(
        "apiVersion: engram-audit/v1\n"
        "environment: prod\n"
        "scope: {database: zep_typo}\n"
        "rules:\n"
        "  - {id: T-INDEX, check: pg.index.valid, severity: high, title: no invalid index}\n",
        encoding="utf-8",
    )
    result = run_in_process(
        "check", "--env", "prod", "--policy", str(policy), "--sources", "postgres",
        "--dsn", pg.auditor_dsn(tls=pg.kind.tls),
    )  # fmt: skip
    assert result.returncode == 3
    [line] = [line for line in result.stderr.splitlines() if "could not collect" in line]
    assert 'database "zep_typo" does not exist' in line
    assert "the policy's scope.database ('zep_typo'); the connection string names 'zep'" in line
    assert "Set scope.database in the policy to the database Zep uses" in line
    # Which database was audited, and why: said on stderr even when it cannot be reached.
    assert "audited database 'zep_typo', the policy's scope.database, not 'zep'" in result.stderr
