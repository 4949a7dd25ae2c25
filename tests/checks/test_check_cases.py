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
    outcomes = list(check.evaluate_snapshot(params, snapshot))
    assert [o.status.value for o in outcomes] == case["expect"], outcomes
    # Seeing the whole snapshot changes nothing: the check reads only the parts it declares.
    unrestricted = list(check.evaluate(params, CheckContext(snapshot)))
    assert unrestricted == outcomes, f"{check_id} reads a part it does not declare in reads="
    for key in ("expected", "actual", "message", "resource"):
        wanted = case.get(f"{key}_contains")
        if wanted is not None:
            texts = [getattr(o, key) for o in outcomes]
            assert any(wanted in text for text in texts), f"{wanted!r} not in {key}s {texts}"
    # facts: what a fix needs, on the outcome that is not a pass (lists as tuples).
    for name, value in (case.get("facts") or {}).items():
        wanted_fact = tuple(value) if isinstance(value, list) else value
        found = [o.facts.get(name) for o in outcomes if o.status.value != "pass"]
        assert wanted_fact in found, f"fact {name}={wanted_fact!r} not in {found}"
    # What a fix is rendered from: some outcome carries these facts (a list is a tuple-valued
    # fact, one fix per item; a string ending in "..." matches as a prefix); no failure carries
    # the absent ones.
    wanted_facts = case.get("facts_contains")
    if wanted_facts is not None:
        assert any(_facts_match(o.facts, wanted_facts) for o in outcomes), [
            o.facts for o in outcomes
        ]
    for name in case.get("facts_absent") or []:
        assert all(name not in o.facts for o in outcomes if o.status.value == "fail"), outcomes


def _facts_match(facts: Any, wanted: dict[str, Any]) -> bool:
    for name, value in wanted.items():
        have = facts.get(name)
        if isinstance(value, list):
            if have != tuple(value):
                return False
        elif isinstance(value, str) and value.endswith("..."):
            if not isinstance(have, str) or not have.startswith(value[:-3]):
                return False
        elif have != value:
            return False
    return True


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


def test_every_check_declares_what_it_reads() -> None:
    for entry in CATALOGUE:
        assert entry.reads, f"{entry.id} declares no reads"


def test_an_undeclared_read_is_caught() -> None:
    """A check that reads firewall rules but declares only the server body sees them as uncollected."""
    from collections.abc import Iterator

    from engram_audit.checks.base import NoParams, Outcome, check, errored, passed
    from engram_audit.model import Source

    @check("test.sneaky", sources=[Source.AZURE], params=NoParams, reads=("azure.server",))
    def sneaky(params: NoParams, context: CheckContext) -> Iterator[Outcome]:
        """Reads firewall rules without declaring them."""
        for server in context.azure_servers:
            if server.firewall_rules is None:
                yield errored(server.id, "firewall rules not collected")
            else:
                yield passed(server.id, "", "")

    base = json.loads((SNAPSHOTS / "prod-compliant.json").read_text(encoding="utf-8"))
    snapshot = Snapshot.model_validate(base)
    declared = list(sneaky.evaluate_snapshot(NoParams(), snapshot))
    unrestricted = list(sneaky.evaluate(NoParams(), CheckContext(snapshot)))
    assert [o.status.value for o in declared] == ["error"]
    assert [o.status.value for o in unrestricted] == ["pass"]


def test_a_check_cannot_declare_an_unknown_or_foreign_part() -> None:
    from engram_audit.checks.base import NoParams, check
    from engram_audit.model import Source

    with pytest.raises(TypeError, match="unknown parts"):
        check("test.typo", sources=[Source.AZURE], params=NoParams, reads=("azure.firewall",))
    with pytest.raises(TypeError, match="outside its sources"):
        check("test.foreign", sources=[Source.AZURE], params=NoParams, reads=("postgres.tables",))
