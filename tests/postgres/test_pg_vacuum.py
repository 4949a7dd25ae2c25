"""A vacuum really running while we collect shows up with its relation, phase and age; a role
that may not see it says so instead of reporting none."""

from __future__ import annotations

import re
import threading
import time

import psycopg

from engram_audit.collectors.postgres.collector import PostgresRequest, collect_postgres
from engram_audit.collectors.run import assemble
from engram_audit.engine import evaluate
from engram_audit.model import Policy, Rule, Severity, Snapshot, Source, Status
from engram_audit.model.plan import CollectionPlan
from engram_audit.model.snapshot import RunningVacuum
from tests.support.pg_servers import BARE_ROLE, SeededServer

PLAN = CollectionPlan(environment="prod")


def test_running_vacuum_is_reported_with_its_age(pg: SeededServer) -> None:
    with psycopg.connect(pg.admin_dsn, autocommit=True) as setup:
        setup.execute(
            "CREATE TABLE IF NOT EXISTS vacuum_target AS SELECT g AS id FROM generate_series(1, 40000) AS g"
        )
        setup.execute("DELETE FROM vacuum_target WHERE id % 2 = 0")
    errors: list[BaseException] = []

    def slow_vacuum() -> None:
        try:
            with psycopg.connect(pg.admin_dsn, autocommit=True) as vacuumer:
                # Cost-based delay turns a sub-second vacuum into seconds of sleeping.
                vacuumer.execute("SET vacuum_cost_delay = 100")
                vacuumer.execute("SET vacuum_cost_limit = 1")
                vacuumer.execute("VACUUM vacuum_target")
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    worker = threading.Thread(target=slow_vacuum)
    worker.start()
    try:
        seen: tuple[RunningVacuum, ...] = ()
        deadline = time.monotonic() + 20
        while not seen and time.monotonic() < deadline and worker.is_alive():
            time.sleep(0.3)
            collection = collect_postgres(PostgresRequest(dsn=pg.auditor_dsn()), PLAN)
            vacuums = collection.section.databases[0].vacuums
            assert vacuums is not None
            seen = vacuums
        # The same vacuum (the superuser's, like autovacuum's) for a role without
        # pg_read_all_stats: a row with no relation, phase or start time.
        hidden = collect_postgres(PostgresRequest(dsn=pg.auditor_dsn(user=BARE_ROLE)), PLAN)
        still_running = worker.is_alive()
    finally:
        with psycopg.connect(pg.admin_dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_cancel_backend(pid) FROM pg_stat_progress_vacuum WHERE relid = 'vacuum_target'::regclass"
            )
        worker.join()
        with psycopg.connect(pg.admin_dsn, autocommit=True) as admin:
            admin.execute("DROP TABLE vacuum_target")
    assert not [error for error in errors if not isinstance(error, psycopg.errors.QueryCanceled)]
    [vacuum] = seen
    assert vacuum.relation == "public.vacuum_target"
    assert vacuum.phase
    assert vacuum.age_seconds > 0
    snapshot = assemble("prod", postgres=collection.section, issues=collection.issues)
    assert long_running(snapshot, max_seconds=0.01) == [Status.FAIL]
    assert long_running(snapshot, max_seconds=3600) == [Status.PASS]

    assert still_running, "the vacuum ended before the role without pg_read_all_stats looked"
    assert hidden.section.databases[0].vacuums is None  # unknown, not "none running"
    [issue] = [issue for issue in hidden.issues if issue.part == "vacuums"]
    assert re.fullmatch(  # autovacuum may be running too: at least ours is counted
        r"\d+ running vacuum\(s\) are hidden from this role \(no relation, phase or start "
        r"time; autovacuum workers included\): it needs pg_read_all_stats \(granted by "
        r"pg_monitor\)",
        issue.reason,
    )
    hidden_snapshot = assemble("prod", postgres=hidden.section, issues=hidden.issues)
    assert long_running(hidden_snapshot, max_seconds=3600) == [Status.ERROR]


def long_running(snapshot: Snapshot, *, max_seconds: float) -> list[Status]:
    rule = Rule(
        id="R",
        check="pg.vacuum.long_running",
        severity=Severity.LOW,
        title="vacuum",
        params={"max_seconds": max_seconds},
    )
    report = evaluate(Policy(environment="prod", rules=(rule,)), snapshot, {Source.POSTGRES})
    return [finding.status for finding in report.findings]
