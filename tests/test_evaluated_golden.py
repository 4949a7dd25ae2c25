"""Golden files for the whole path: bundled policy + drifted snapshot -> engine -> console and JSON.

Any change in a check's verdict, wording, ordering or a reporter's layout shows up here as a
reviewable diff. Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/test_evaluated_golden.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engram_audit.engine import evaluate
from engram_audit.model import ALL_SOURCES, Snapshot
from engram_audit.policy.loader import load_policy
from engram_audit.reporters import console, json_report
from tests.conftest import ROOT, snapshot_data

GOLDEN = ROOT / "tests" / "golden" / "evaluated"
RENDERERS = {"console.txt": console.render, "json": json_report.render}


@pytest.mark.parametrize("environment", ["prod", "uat", "staging", "dev"])
@pytest.mark.parametrize("suffix", sorted(RENDERERS))
def test_drifted_environment_renders_as_reviewed(
    environment: str, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # policy paths in reports are relative to the working directory
    policy = load_policy(Path("policies") / f"{environment}.yaml")
    report = evaluate(
        policy, Snapshot.model_validate(snapshot_data(f"{environment}-drifted")), ALL_SOURCES
    )
    rendered = RENDERERS[suffix](report).replace(report.tool.version, "<version>")
    path = GOLDEN / f"{environment}-drifted.{suffix}"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(rendered, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == rendered
