"""SQL fixes: what the audited database wrote stays inside a comment, fixes name real objects,
and the script keeps quoted names as they are. The proof that the scripts run and fix what they
say, on a real server with psql, is ``tests/postgres/test_pg_remediation.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engram_audit.checks import get_check
from engram_audit.checks.base import CheckContext
from engram_audit.checks.postgres.indexes import hnsw_index_name, recreation
from engram_audit.errors import InputError
from engram_audit.model import Finding, Report, Severity, Snapshot, Status
from engram_audit.model.snapshot import IndexRef
from engram_audit.policy.loader import load_policy
from engram_audit.remediation import (
    MisplacedStatement,
    MissingFact,
    misplaced_statements,
    render,
    render_or_explain,
    target_of,
)
from engram_audit.remediation.scripts import build, split_sql

ROOT = Path(__file__).parents[2]
HOSTILE = (
    'CREATE UNIQUE INDEX "x\n\\! touch /tmp/p\r\n*/ DROP TABLE t; --" ON public.users '
    "USING btree (email) WHERE ((email)::text <> 'a\n:v \\gexec\u2028DROP TABLE u; --'::text)"
)


def _template(rule: str) -> str:
    for policy_rule in load_policy(ROOT / "policies" / "prod.yaml").rules:
        if policy_rule.id == rule:
            return policy_rule.remediation
    raise AssertionError(rule)


def _report(*findings: Finding) -> Report:
    base = json.loads((ROOT / "tests" / "golden" / "report.json").read_text(encoding="utf-8"))
    return Report.model_validate({**base, "findings": []}).model_copy(update={"findings": findings})


def _finding(rule: str, fix: str, **facts: str) -> Finding:
    return Finding(
        rule=rule,
        check="c",
        title="t",
        severity=Severity.MEDIUM,
        status=Status.FAIL,
        resource="postgresql://h:5432/zep/public.x",
        expected="valid",
        actual="INVALID",
        remediation=fix,
        facts={"database": "zep", **facts},
    )


def test_a_hostile_index_definition_cannot_leave_its_comment() -> None:
    facts = {
        "database": "zep",
        "schema": "public",
        "table": "users",
        "index": "x\n*/ DROP TABLE t; --",
        "index_definition": HOSTILE.replace(
            "CREATE UNIQUE INDEX", "CREATE UNIQUE INDEX CONCURRENTLY"
        ),
    }
    fix = render(_template("ZEP-PG-INDEX-VALID"), facts)
    script = build(_report(_finding("ZEP-PG-INDEX-VALID", fix, **facts)))["postgres-zep.sql"]
    # Outside comments, the file holds only psql settings and the one statement, whose quoted
    # name keeps its line break (it is the index's real name).
    code = [line for line in script.split("\n") if line and not line.startswith("-- ")]
    assert code == [
        "\\set ON_ERROR_STOP on",
        "\\set AUTOCOMMIT on",
        'DROP INDEX CONCURRENTLY IF EXISTS public."x',
        '*/ DROP TABLE t; --";',
    ]
    [recreate] = [line for line in script.splitlines() if "re-create it" in line]
    assert recreate.startswith(
        "-- fix the data, then re-create it: CREATE UNIQUE INDEX CONCURRENTLY"
    )
    assert "\\! touch /tmp/p */ DROP TABLE t; --" in recreate  # one line, inert
    assert "\r" not in script and "\u2028" not in script


def test_sql_from_the_audited_database_is_only_shown_in_a_comment(tmp_path: Path) -> None:
    assert misplaced_statements("DROP INDEX {index}; -- {index_definition}") == []
    assert misplaced_statements("DROP INDEX {index}; {index_definition}") == ["index_definition"]
    assert misplaced_statements("psql -c {index_definition}") == ["index_definition"]
    assert misplaced_statements("Re-create it with {index_definition}") == []  # prose
    with pytest.raises(MisplacedStatement):
        render("DROP INDEX {index}; {index_definition}", {"index": "i", "index_definition": "x"})
    said = render_or_explain("DROP INDEX i; {index_definition}", {"index_definition": "x"})
    assert said.startswith("(not rendered: {index_definition} may only appear in a SQL comment)")
    assert "x" not in said.replace("index_definition", "")

    policy = tmp_path / "p.yaml"
    policy.write_text(
        "apiVersion: engram-audit/v1\nenvironment: t\nrules:\n"
        "  - id: R1\n    check: pg.index.valid\n    severity: high\n    title: t\n"
        '    remediation: "DROP INDEX CONCURRENTLY {index}; {index_definition}"\n',
        encoding="utf-8",
    )
    with pytest.raises(InputError) as raised:
        load_policy(policy)
    [problem] = raised.value.problems
    assert problem.line == 8 and "only inside a SQL comment" in problem.message, problem


def test_a_comment_naming_a_missing_fact_is_left_out_a_statement_is_not() -> None:
    template = "CREATE INDEX {hnsw_index} ON {table} (c); -- drop {index} after\n-- always"
    facts = {"schema": "public", "table": "t", "hnsw_index": "t_c_hnsw_idx"}
    assert render(template, facts) == "CREATE INDEX t_c_hnsw_idx ON public.t (c);\n-- always"
    assert render(template, {**facts, "index": "old"}).startswith(
        "CREATE INDEX t_c_hnsw_idx ON public.t (c); -- drop public.old after"
    )
    with pytest.raises(MissingFact):
        render(template, {"schema": "public", "table": "t"})


def test_split_sql_keeps_quoted_names_byte_for_byte_and_every_comment() -> None:
    text = 'DROP INDEX public."a  b\nc";  -- one\n-- two\nALTER  TABLE   t RESET (x);'
    assert split_sql(text) == [
        ('DROP INDEX public."a  b\nc";', "one\ntwo"),
        ("ALTER TABLE t RESET (x);", ""),
    ]


def test_prose_that_starts_with_a_sql_word_is_prose() -> None:
    assert target_of("set `require_secure_transport=on` and connect") == "text"
    assert target_of("Create a new server") == "text"
    assert target_of("DELETE FROM t WHERE d IS NOT NULL;") == "sql"


@pytest.mark.parametrize(
    ("name", "definition", "statement"),
    [
        (
            "users_email_unique_idx",
            "CREATE UNIQUE INDEX users_email_unique_idx ON public.users USING btree (email)",
            "CREATE UNIQUE INDEX CONCURRENTLY users_email_unique_idx ON public.users "
            "USING btree (email)",
        ),
        ("i", "CREATE INDEX i ON public.t USING hnsw (e vector_cosine_ops)",
         "CREATE INDEX CONCURRENTLY i ON public.t USING hnsw (e vector_cosine_ops)"),
        # A failed REINDEX CONCURRENTLY's leftovers are only dropped (PostgreSQL's REINDEX docs).
        ("i_ccnew", "CREATE INDEX i_ccnew ON public.t USING btree (c)", ""),
        ("i_ccold12", "CREATE INDEX i_ccold12 ON public.t USING btree (c)", ""),
        # PostgreSQL cannot build an index on a partitioned table concurrently.
        ("p", "CREATE INDEX p ON ONLY public.t USING btree (c)", ""),
        ("old", None, ""),  # a snapshot from before the definition was recorded
    ],
)  # fmt: skip
def test_recreation_of_an_invalid_index(name: str, definition: str | None, statement: str) -> None:
    index = IndexRef(schema_name="public", table="t", name=name, definition=definition)
    assert recreation(index) == statement


def _prod_database(snapshot: Snapshot) -> Any:
    assert snapshot.postgres is not None
    return snapshot.postgres.databases[0]


def test_the_new_hnsw_index_gets_a_free_name_as_postgresql_stores_it() -> None:
    path = ROOT / "fixtures" / "snapshots" / "prod-drifted.json"
    snapshot = Snapshot.model_validate(json.loads(path.read_text(encoding="utf-8")))
    database = _prod_database(snapshot)
    [column] = [c for c in database.vector_columns if c.table == "fact_embedding"]
    assert hnsw_index_name(column, database) == "fact_embedding_embedding_hnsw_idx"
    taken = database.vector_indexes[0].model_copy(
        update={"table": "fact_embedding", "name": "fact_embedding_embedding_hnsw_idx"}
    )
    crowded = database.model_copy(update={"vector_indexes": (*database.vector_indexes, taken)})
    assert hnsw_index_name(column, crowded) == "fact_embedding_embedding_hnsw_idx1"
    long = column.model_copy(update={"table": "é" * 40})
    name = hnsw_index_name(long, database)
    assert len(name.encode("utf-8")) <= 63 and name == "é" * 31  # cut on a character boundary


def test_failing_vector_columns_name_the_index_to_create_and_the_one_it_replaces() -> None:
    path = ROOT / "fixtures" / "snapshots" / "prod-drifted.json"
    snapshot = Snapshot.model_validate(json.loads(path.read_text(encoding="utf-8")))
    check = get_check("pg.vector.index")
    assert check is not None
    outcomes = {
        o.resource.rsplit("/", 1)[-1]: o
        for o in check.evaluate(
            check.parse_params({"allowed_methods": ["hnsw"]}), CheckContext(snapshot)
        )
        if o.status is Status.FAIL
    }
    replaced = outcomes["public.fact_embedding.embedding"].facts
    assert replaced["index"] == "fact_embedding_embedding_ivfflat_idx"
    assert replaced["hnsw_index"] == "fact_embedding_embedding_hnsw_idx"
    assert "index" not in outcomes["public.entity_embedding.embedding"].facts  # none to replace
