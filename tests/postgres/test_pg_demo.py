"""The demo's engine: a throwaway server, seeded, collected live, then gone."""

from __future__ import annotations

import tempfile
from pathlib import Path

from engram_audit.demo.database import collect_demo
from engram_audit.model.plan import CollectionPlan, SessionRetentionPlan


def test_collect_demo_plants_every_problem_and_leaves_nothing_running() -> None:
    messages: list[str] = []
    plan = CollectionPlan(environment="prod", retention=(SessionRetentionPlan(),))
    collection = collect_demo(plan, messages.append)
    assert messages[0].startswith("starting")
    assert messages[-1].startswith("stopping")
    assert collection.issues == ()
    [database] = collection.section.databases
    assert database.host is not None
    assert database.host.startswith(tempfile.gettempdir())  # the server's own socket directory
    assert not Path(database.host).exists()  # stopped and deleted
    assert database.server_version_num is not None
    assert database.server_version_num // 10000 == 18
    assert database.client_sessions is not None
    assert [(s.usename, s.ssl) for s in database.client_sessions] == [("zep_app", False)]
    assert database.invalid_indexes is not None
    assert [index.name for index in database.invalid_indexes] == ["sessions_user_id_unique_idx"]
    assert database.vector_indexes is not None
    assert {index.method for index in database.vector_indexes} == {"hnsw", "ivfflat"}
    assert database.statements is not None
    [retention] = database.retention or ()
    assert retention.counts[0].count == 5
