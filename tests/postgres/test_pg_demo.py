"""The demo's engine: a throwaway server, seeded with a real Zep layout, collected live, then gone."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from engram_audit.cli.demo import LAYOUT_NAMES
from engram_audit.demo.database import CE_V1, LAYOUTS, LEGACY, collect_demo
from engram_audit.model.plan import CollectionPlan, SessionRetentionPlan, SoftDeletedPlan
from tests.support.cli import run_in_process as run


def test_the_cli_offers_every_layout_the_demo_can_seed() -> None:
    assert set(LAYOUT_NAMES) == set(LAYOUTS)
    assert LAYOUT_NAMES[0] == LEGACY.name  # the default: the most common in the wild


def test_collect_demo_seeds_legacy_zep_and_leaves_nothing_running() -> None:
    messages: list[str] = []
    plan = CollectionPlan(
        environment="prod",
        database="postgres",  # Zep legacy's default database
        retention=(SessionRetentionPlan(table="session"),),
        soft_deleted=(SoftDeletedPlan(table="session"),),
    )
    collection = collect_demo(plan, LEGACY, messages.append)
    assert messages[0].startswith("starting")
    assert "Zep legacy" in messages[1]
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
    assert [index.name for index in database.invalid_indexes] == ["users_email_unique_idx"]
    assert database.vector_indexes is not None
    assert {index.method for index in database.vector_indexes} == {"hnsw", "ivfflat"}
    assert database.statements is not None
    [retention] = database.retention or ()
    assert retention.counts[0].count == 6
    [purge] = database.soft_deleted or ()
    assert (purge.soft_deleted, purge.stale) == (4, 3)


def test_demo_ce_v1_lists_what_it_planted_and_each_is_a_failure(tmp_path: Path) -> None:
    result = run("demo", "--layout", "ce-v1", "--output-dir", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Planted in the throwaway Zep Community Edition v1" in result.stdout
    for rule, what in CE_V1.planted:
        assert f"{rule:<31} {what}" in result.stdout
    assert "would exit 1" in result.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    failed = {f["rule"] for f in report["findings"] if f["status"] == "fail"}
    assert {rule for rule, _ in CE_V1.planted} <= failed
    assert not [f for f in report["findings"] if f["status"] == "error"]
    # The policy the demo evaluated is the one a user writes: a few lines on the preset.
    policy = (tmp_path / "out" / "policy.yaml").read_text(encoding="utf-8")
    assert len(policy.splitlines()) <= 10
    assert "presets/zep-ce-v1.yaml" in policy and "schemas: [zep]" in policy
    assert report["policy_files"][-1] == "out/policy.yaml"
