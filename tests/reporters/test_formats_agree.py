"""One run, one story: every format states the same counts and the same gate split, and the
same input renders to the same bytes in processes with different hash seeds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

from engram_audit.model import Severity
from engram_audit.reporters import FORMATS
from tests.conftest import ROOT
from tests.golden.sample import sample_report

_SUMMARY = re.compile(
    r"^(?P<total>\d+) findings: (?P<fail>\d+) failed(?: \([^)]*\))? · (?P<error>\d+) errors · "
    r"(?P<waived>\d+) waived · (?P<skip>\d+) skipped · (?P<pass>\d+) passed$",
    re.MULTILINE,
)
_GATE = re.compile(r"gate: --fail-on (\w+): (\d+) failure\(s\) fail the gate, (\d+) below it")


def _from_text(text: str) -> dict[str, int]:
    match = _SUMMARY.search(text)
    assert match, text[-400:]
    counts = {key: int(value) for key, value in match.groupdict().items()}
    gate = _GATE.search(text)
    counts["below_gate"] = int(gate[3]) if gate else 0
    return counts


def test_every_format_states_the_same_counts_and_gate_split() -> None:
    report = sample_report().model_copy(update={"fail_on": Severity.MEDIUM})
    console = _from_text(FORMATS["console"](report))
    markdown = _from_text(FORMATS["markdown"](report))

    document = json.loads(FORMATS["json"](report))
    by_status = document["summary"]["by_status"]
    from_json = {
        "total": document["summary"]["total"],
        **{key: by_status[key] for key in ("fail", "error", "waived", "skip", "pass")},
        "below_gate": document["gate"]["below_gate_failures"],
    }

    sarif = json.loads(FORMATS["sarif"](report))["runs"][0]["properties"]["summary"]
    from_sarif = {
        "total": sarif["total"],
        **{key: sarif[key] for key in ("fail", "error", "waived", "skip", "pass")},
        "below_gate": sarif["below_gate_failures"],
    }

    root = ET.fromstring(FORMATS["junit"](report))
    suites = root.findall("testsuite")
    cases = root.iter("testcase")
    skipped_or_waived = sum(case.find("skipped") is not None for case in cases)
    suite_properties = [
        {p.get("name"): p.get("value") for p in suite.iter("property")} for suite in suites
    ]
    assert {props["fail_on"] for props in suite_properties} == {"medium"}
    below = {int(props["below_gate_failures"] or "-1") for props in suite_properties}

    assert console == markdown == from_json == from_sarif
    assert below == {console["below_gate"]} and console["below_gate"] > 0
    assert int(root.get("tests", "0")) == console["total"]
    assert int(root.get("errors", "0")) == console["error"]
    assert int(root.get("failures", "0")) == console["fail"] - console["below_gate"]
    assert skipped_or_waived == console["skip"] + console["waived"]
    assert document["gate"]["fail_on"] == sarif["fail_on"] == "medium"


_RENDER_ALL = """
import hashlib, json, os, sys
sys.path.insert(0, os.getcwd())
from engram_audit.engine import evaluate
from engram_audit.model import ALL_SOURCES, Snapshot
from engram_audit.policy.loader import load_policy
from engram_audit.reporters import FORMATS
from tests.golden.sample import sample_report
snapshot = Snapshot.model_validate(json.load(open("fixtures/snapshots/prod-drifted.json")))
from pathlib import Path
reports = [sample_report(), evaluate(load_policy(Path("policies/prod.yaml")), snapshot, ALL_SOURCES)]
for report in reports:
    for name in sorted(FORMATS):
        print(name, hashlib.sha256(FORMATS[name](report).encode()).hexdigest())
"""


def test_byte_identical_across_processes_with_different_hash_seeds() -> None:
    outputs = []
    for seed in ("1", "4242"):
        result = subprocess.run(
            [sys.executable, "-c", _RENDER_ALL],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        )
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].count("\n") == 2 * len(FORMATS)
