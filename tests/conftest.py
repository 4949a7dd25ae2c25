from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engram_audit.loader import load_policy
from engram_audit.model import Policy, Snapshot

ROOT = Path(__file__).parents[1]
SNAPSHOTS = ROOT / "fixtures" / "snapshots"
POLICIES = ROOT / "policies"


def snapshot_data(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SNAPSHOTS / f"{name}.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture
def prod_policy() -> Policy:
    return load_policy(POLICIES / "prod.yaml")


@pytest.fixture
def prod_drifted() -> Snapshot:
    return Snapshot.model_validate(snapshot_data("prod-drifted"))


@pytest.fixture
def prod_compliant() -> Snapshot:
    return Snapshot.model_validate(snapshot_data("prod-compliant"))
