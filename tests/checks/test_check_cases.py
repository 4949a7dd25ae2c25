"""Data-driven pass / fail / not-applicable cases for every check in the catalogue.

Each ``cases/<check id>.yaml`` starts from a bundled snapshot, edits it with dotted paths, runs
the check with the case's params and compares the statuses (and optionally text) it yields.
A check without a passing and a failing case fails ``test_every_check_has_cases``.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from engram_audit.checks import CATALOGUE, CheckContext, get_check
from engram_audit.model import Snapshot

CASES_DIR = Path(__file__).parent / "cases"
SNAPSHOTS = Path(__file__).parents[2] / "fixtures" / "snapshots"
# Steps of a dotted path: name, [index], or ["key.with.dots"] for parameter names.
_STEP = re.compile(r'\["([^"]+)"\]|\[(\d+)\]|([^.\[\]]+)')


def _steps(path: str) -> list[str | int]:
    return [quoted or (int(index) if index else key) for quoted, index, key in _STEP.findall(path)]


def _walk(document: Any, steps: list[str | int]) -> Any:
    for step in steps:
        document = document[step]
    return document


def apply_edits(document: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    edited = copy.deepcopy(document)
    for path, value in (case.get("set") or {}).items():
        steps = _steps(path)
        _walk(edited, steps[:-1])[steps[-1]] = value
    for path, value in (case.get("append") or {}).items():
        _walk(edited, _steps(path)).append(value)
    for path in case.get("delete") or []:
        steps = _steps(path)
        parent = _walk(edited, steps[:-1])
        del parent[steps[-1]]
    return edited


def load_cases() -> list[tuple[str, dict[str, Any]]]:
    yaml = YAML(typ="safe")
    collected = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        spec = yaml.load(path.read_text(encoding="utf-8"))
        for case in spec["cases"]:
            collected.append((spec["check"], case))
    return collected


CASES = load_cases()


@pytest.mark.parametrize(("check_id", "case"), CASES, ids=[f"{c}:{k['name']}" for c, k in CASES])
def test_case(check_id: str, case: dict[str, Any]) -> None:
    check = get_check(check_id)
    assert check is not None, f"unknown check id {check_id}"
    base = json.loads((SNAPSHOTS / f"{case['snapshot']}.json").read_text(encoding="utf-8"))
    snapshot = Snapshot.model_validate(apply_edits(base, case))
    params = check.parse_params(case.get("params") or {})
    outcomes = list(check.evaluate(params, CheckContext(snapshot)))
    assert [o.status.value for o in outcomes] == case["expect"], outcomes
    for key in ("expected", "actual", "message", "resource"):
        wanted = case.get(f"{key}_contains")
        if wanted is not None:
            texts = [getattr(o, key) for o in outcomes]
            assert any(wanted in text for text in texts), f"{wanted!r} not in {key}s {texts}"


def test_every_check_has_cases() -> None:
    statuses: dict[str, set[str]] = {entry.id: set() for entry in CATALOGUE}
    for check_id, case in CASES:
        assert check_id in statuses, f"case file for unknown check {check_id}"
        statuses[check_id].update(case["expect"])
    lacking = {
        cid: sorted({"pass", "fail"} - seen)
        for cid, seen in statuses.items()
        if not {"pass", "fail"} <= seen
    }
    assert not lacking, f"checks without a pass and a fail case: {lacking}"
