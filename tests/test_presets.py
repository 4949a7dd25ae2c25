"""The shipped Zep layout presets: valid base layers that every environment policy can extend."""

from __future__ import annotations

from pathlib import Path

import pytest

from engram_audit.model import Policy
from engram_audit.policy.loader import load_policy, validate_paths
from engram_audit.policy.planning import plan_for
from engram_audit.policy.presets import PRESETS, preset_path
from tests.conftest import POLICIES

ENVIRONMENTS = ("staging", "dev", "uat", "prod")


def layered(tmp_path: Path, environment: str, preset: str, extra: str = "") -> Policy:
    """The few lines a user writes: an environment, extended with a preset (listed last)."""
    path = tmp_path / f"{environment}-{preset}.yaml"
    path.write_text(
        "apiVersion: engram-audit/v1\n"
        f"environment: {environment}\n"
        f"extends: [{POLICIES / f'{environment}.yaml'}, {preset_path(POLICIES, preset)}]\n" + extra,
        encoding="utf-8",
    )
    return load_policy(path)


def test_every_preset_is_a_valid_base_layer_without_environment() -> None:
    paths = [preset_path(POLICIES, name) for name in PRESETS]
    checked, problems = validate_paths(paths)
    assert problems == []
    assert len(checked) == len(PRESETS)
    for path in paths:
        assert "\nenvironment:" not in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_environment_extends_every_preset(
    tmp_path: Path, environment: str, preset: str
) -> None:
    policy = layered(tmp_path, environment, preset)
    rules = {rule.id: rule for rule in policy.enabled_rules()}
    assert policy.scope.database == "postgres"  # Zep's default database, in both releases
    retention = rules["ZEP-PG-SESSION-RETENTION"]
    assert retention.params["table"] == {"zep-legacy": "session", "zep-ce-v1": "sessions"}[preset]
    assert retention.params["deleted_column"] == "deleted_at"
    # Neither layout has a facts table in Postgres.
    assert "ZEP-PG-EXPIRED-FACTS" not in rules
    purged = sorted(
        r.params["table"] for r in rules.values() if r.check == "pg.retention.soft_deleted"
    )
    assert (
        purged
        == {
            # purge.go@v0.27.2: messageTableList; db_utils_ce.go@v1.0.2: messages, sessions.
            "zep-legacy": [
                "message",
                "message_embedding",
                "session",
                "summary",
                "summary_embedding",
            ],
            "zep-ce-v1": ["messages", "sessions"],
        }[preset]
    )
    # The environment's own rules stay (here: its storage and Azure rules).
    assert "ZEP-PG-STORAGE" in rules and "ZEP-AZ-VERSION" in rules
    plan = plan_for(policy)
    assert {r.table for r in plan.retention} == {
        "zep-legacy": {"session", "message"},
        "zep-ce-v1": {"sessions", "messages"},
    }[preset]


def test_the_legacy_preset_names_zeps_embedding_tables_and_hnsw_parameters(tmp_path: Path) -> None:
    rules = {rule.id: rule for rule in layered(tmp_path, "prod", "zep-legacy").rules}
    index = rules["ZEP-PG-VECTOR-INDEX"].params
    assert index["tables"] == ["message_embedding", "summary_embedding", "docstore_*"]
    assert index["hnsw"] == {"m": 16, "ef_construction": 64}  # schema.go@v0.27.2 L484-485
    assert index["opclasses"] == ["vector_cosine_ops"]


def test_a_user_sets_zep_ces_schema_and_database_in_their_own_file(tmp_path: Path) -> None:
    policy = layered(tmp_path, "prod", "zep-ce-v1", "scope: {database: zep, schemas: [zep]}\n")
    assert (policy.scope.database, policy.scope.schemas) == ("zep", ("zep",))


def test_the_shipped_environment_policies_name_no_layout_table_but_the_retention_ones() -> None:
    """The soft-delete rules live in the presets only: overriding the session table of
    ZEP-PG-SESSION-RETENTION never leaves a shipped rule on a table the layout lacks."""
    for environment in ENVIRONMENTS:
        policy = load_policy(POLICIES / f"{environment}.yaml")
        assert not [r for r in policy.rules if r.check == "pg.retention.soft_deleted"]
