"""Baselines: new / unchanged / fixed against an earlier JSON report, and gating on new only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engram_audit.errors import InputError
from engram_audit.gate.baseline import load_report, mark_baseline
from engram_audit.gate.exit_codes import ExitCode, exit_code
from engram_audit.model import Finding, Report, Severity, Status, Summary
from engram_audit.reporters import json_report
from tests.golden.sample import REPLICA, SERVER, sample_report


def report_with(statuses: dict[tuple[str, str], Status]) -> Report:
    base = sample_report().model_copy(update={"collection_issues": ()})
    findings = tuple(
        f.model_copy(
            update={
                "status": statuses.get((f.rule, f.resource), Status.PASS),
                "baseline_state": None,
                "waiver": None,
            }
        )
        for f in base.findings
    )
    return base.model_copy(update={"findings": findings, "summary": Summary.of(findings)})


def state(report: Report, rule: str, resource: str) -> str | None:
    finding: Finding = next(f for f in report.findings if (f.rule, f.resource) == (rule, resource))
    return finding.baseline_state


GEO = ("prod.backup.geo_redundant", SERVER)
RETENTION = ("prod.backup.retention_days", SERVER)
CPU = ("prod.monitor.cpu_alert", SERVER)
REPLICA_GEO = ("prod.backup.geo_redundant", REPLICA)


def test_marks_new_and_unchanged_and_lists_fixed() -> None:
    old = report_with({GEO: Status.FAIL, CPU: Status.FAIL, REPLICA_GEO: Status.WAIVED})
    new = report_with({GEO: Status.FAIL, RETENTION: Status.FAIL, REPLICA_GEO: Status.FAIL})
    outcome = mark_baseline(new, old)
    assert state(outcome.report, *GEO) == "unchanged"
    assert state(outcome.report, *RETENTION) == "new"
    # Its waiver lapsed since the baseline: a failure the gate must see again.
    assert state(outcome.report, *REPLICA_GEO) == "new"
    assert [(f.rule, f.resource) for f in outcome.fixed] == [CPU]
    assert outcome.notes()[0] == "baseline: 2 new, 1 unchanged, 1 fixed since the baseline"
    assert all(f.baseline_state is None for f in outcome.report.findings if f.status is Status.PASS)


def test_arm_id_case_changes_do_not_make_findings_new() -> None:
    old = report_with({GEO: Status.FAIL})
    new = report_with({GEO: Status.FAIL})
    shouted = tuple(
        f.model_copy(update={"resource": f.resource.upper()}) if f.resource == SERVER else f
        for f in new.findings
    )
    outcome = mark_baseline(new.model_copy(update={"findings": shouted}), old)
    assert state(outcome.report, GEO[0], SERVER.upper()) == "unchanged"


def test_fail_on_new_gates_only_on_new_failures() -> None:
    old = report_with({GEO: Status.FAIL})
    same = mark_baseline(report_with({GEO: Status.FAIL}), old).report
    assert exit_code(same, Severity.LOW) is ExitCode.FAILED
    assert exit_code(same, Severity.LOW, only_new=True) is ExitCode.CLEAN
    worse = mark_baseline(report_with({GEO: Status.FAIL, RETENTION: Status.FAIL}), old).report
    assert exit_code(worse, Severity.LOW, only_new=True) is ExitCode.FAILED


def test_baseline_from_another_environment_is_refused() -> None:
    uat = report_with({}).model_copy(update={"environment": "uat"})
    with pytest.raises(InputError, match="environment 'uat', this run is 'prod'"):
        mark_baseline(report_with({}), uat)


def test_load_report_round_trips_the_json_format(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(json_report.render(sample_report()), encoding="utf-8")
    assert load_report(path) == sample_report()


@pytest.mark.parametrize(
    ("content", "where", "message"),
    [
        ("{not json", "1:2", "not valid JSON"),
        ('{"runs": []}', "1:1", "not an engram-audit JSON report (write one with -o json:PATH)"),
        ('{"findings": [], "environment": "prod"}', "1:1", "not a valid engram-audit JSON report"),
    ],
)
def test_load_report_rejects_other_files(
    tmp_path: Path, content: str, where: str, message: str
) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(f"baseline.json:{where}:")) as caught:
        load_report(path)
    assert message in str(caught.value)
    with pytest.raises(InputError, match="file not found"):
        load_report(tmp_path / "missing.json")
