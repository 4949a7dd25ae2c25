"""SARIF: valid against the OASIS schema and Microsoft's multitool with GitHub's rules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from engram_audit.model import Report, Severity, Status, Summary
from engram_audit.reporters import sarif
from tests.golden.sample import REFERENCE_SCHEMAS, REPLICA, SERVER, sample_report

MULTITOOL_PATHS = (
    "/tmp/sarif-multitool/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool",
    "node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool",
)


def _schema() -> dict[str, Any]:
    path = REFERENCE_SCHEMAS / "sarif-schema-2.1.0.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = _schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def render(report: Report) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(sarif.render(report))
    return loaded


def results_by_rule(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (r["properties"]["policyRule"], r["properties"]["resource"]): r
        for r in document["runs"][0]["results"]
    }


def test_sample_is_valid_sarif_2_1_0() -> None:
    assert schema_errors(render(sample_report())) == []


def test_only_failures_and_errors_become_results() -> None:
    document = render(sample_report())
    statuses = sorted(r["properties"]["status"] for r in document["runs"][0]["results"])
    assert statuses == ["error", "fail", "fail", "fail", "fail", "fail"]


def test_error_findings_use_their_own_rule_and_waived_ones_are_listed_apart() -> None:
    run = render(sample_report())["runs"][0]
    errors = [r for r in run["results"] if r["properties"]["status"] == "error"]
    assert [r["ruleId"] for r in errors] == [sarif.ERROR_RULE_ID]
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert rule_ids[errors[0]["ruleIndex"]] == sarif.ERROR_RULE_ID
    assert run["properties"]["waivedFindings"] == [
        {
            "ruleId": "prod.backup.geo_redundant",
            "resource": REPLICA,
            "waiver": "Read replica: geo backup not supported (owner: dba-team, ticket: SEC-142, "
            "expires 2031-03-31)",
        }
    ]
    assert all(r["properties"]["resource"] != REPLICA for r in run["results"])


def test_every_result_has_a_relative_physical_location_and_the_resource_as_logical_one() -> None:
    for result in render(sample_report())["runs"][0]["results"]:
        (location,) = result["locations"]
        artifact = location["physicalLocation"]["artifactLocation"]
        assert artifact["uriBaseId"] == "%SRCROOT%"
        assert artifact["uri"] in ("policies/base.yaml", "policies/prod.yaml")
        assert location["physicalLocation"]["region"]["startLine"] >= 1
        assert (
            location["logicalLocations"][0]["fullyQualifiedName"]
            == result["properties"]["resource"]
        )


def test_result_points_at_the_rule_declaration_line() -> None:
    result = results_by_rule(render(sample_report()))[("prod.backup.geo_redundant", SERVER)]
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "policies/base.yaml"
    assert physical["region"] == {"startLine": 14, "startColumn": 5}


def test_a_finding_without_location_is_anchored_to_the_first_policy_file() -> None:
    report = sample_report()
    findings = tuple(f.model_copy(update={"location": None}) for f in report.findings)
    rules = tuple(r.model_copy(update={"location": None}) for r in report.rules)
    document = render(report.model_copy(update={"findings": findings, "rules": rules}))
    for result in document["runs"][0]["results"]:
        physical = result["locations"][0]["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == "policies/base.yaml"
        assert physical["region"]["startLine"] == 1


def test_absolute_policy_paths_become_file_uris() -> None:
    report = sample_report()
    findings = tuple(
        f.model_copy(
            update={"location": f.location.model_copy(update={"path": "/srv/p q/prod.yaml"})}
        )
        if f.location
        else f
        for f in report.findings
    )
    result = render(report.model_copy(update={"findings": findings}))["runs"][0]["results"][0]
    artifact = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": "file:///srv/p%20q/prod.yaml"}


def test_fingerprints_are_stable_distinct_per_resource_and_ignore_arm_id_case() -> None:
    report = sample_report()
    first = results_by_rule(render(report))
    shouted = tuple(
        f.model_copy(update={"resource": f.resource.upper(), "location": None})
        if f.resource.startswith("/")
        else f
        for f in report.findings
    )
    again = render(report.model_copy(update={"findings": shouted}))
    original = first[("prod.backup.geo_redundant", SERVER)]["partialFingerprints"]
    moved = results_by_rule(again)[("prod.backup.geo_redundant", SERVER.upper())]
    assert moved["partialFingerprints"] == original
    all_prints = [r["partialFingerprints"]["primaryLocationLineHash"] for r in first.values()]
    assert len(set(all_prints)) == len(all_prints)


def test_rules_describe_themselves_for_github() -> None:
    rules = {r["id"]: r for r in render(sample_report())["runs"][0]["tool"]["driver"]["rules"]}
    geo = rules["prod.backup.geo_redundant"]
    assert geo["shortDescription"]["text"] == "Geo-redundant backup is enabled."
    assert geo["fullDescription"]["text"].startswith("Production must survive a regional outage")
    assert "Remediation: az postgres flexible-server create" in geo["help"]["text"]
    assert "**Remediation:** az postgres" in geo["help"]["markdown"]
    assert geo["properties"]["security-severity"] == "8.0"
    assert "security" in geo["properties"]["tags"]
    tls = rules["prod.tls.min_version"]
    assert "&lt;strict&gt;" not in tls["shortDescription"]["text"]  # plain text stays plain
    for rule in rules.values():
        if "security-severity" in rule["properties"]:
            assert 0.0 < float(rule["properties"]["security-severity"]) <= 10.0


@pytest.mark.parametrize(
    ("severity", "label"),
    [
        (Severity.CRITICAL, "critical"),
        (Severity.HIGH, "high"),
        (Severity.MEDIUM, "medium"),
        (Severity.LOW, "low"),
    ],
)
def test_security_severity_falls_in_githubs_band(severity: Severity, label: str) -> None:
    score = float(sarif.SECURITY_SEVERITY[severity])
    bands = {"critical": (9.0, 10.0), "high": (7.0, 8.9), "medium": (4.0, 6.9), "low": (0.1, 3.9)}
    low, high = bands[label]
    assert low <= score <= high


def test_baseline_state_is_carried() -> None:
    results = results_by_rule(render(sample_report()))
    assert results[("prod.backup.geo_redundant", SERVER)]["baselineState"] == "unchanged"
    assert results[("prod.backup.retention_days", SERVER)]["baselineState"] == "new"
    report = sample_report()
    plain = tuple(f.model_copy(update={"baseline_state": None}) for f in report.findings)
    for result in render(report.model_copy(update={"findings": plain}))["runs"][0]["results"]:
        assert "baselineState" not in result


def test_expired_waiver_stays_a_result_and_says_so() -> None:
    result = results_by_rule(render(sample_report()))[("prod.backup.retention_days", SERVER)]
    assert "waiver expired on 2030-12-31" in result["message"]["text"]
    assert result["properties"]["waiver"].startswith("waiver expired")


def test_one_run_per_environment_with_distinct_automation_ids() -> None:
    prod = sample_report()
    uat = prod.model_copy(update={"environment": "uat"})
    document = json.loads(sarif.render_runs((prod, uat)))
    ids = [run["automationDetails"]["id"] for run in document["runs"]]
    assert ids == ["engram-audit/prod/", "engram-audit/uat/"]
    assert schema_errors(document) == []
    with pytest.raises(ValueError, match="distinct"):
        sarif.render_runs((prod, prod))


def test_results_are_capped_at_githubs_limit_keeping_the_most_severe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sarif, "MAX_RESULTS_PER_RUN", 2)
    run = render(sample_report())["runs"][0]
    kept = sorted(r["properties"]["severity"] for r in run["results"])
    assert kept == ["critical", "high"]
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert any("4 of 6 results were left out" in n["message"]["text"] for n in notes)


def test_collection_issues_become_tool_notifications() -> None:
    notes = render(sample_report())["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert any("403 AuthorizationFailed" in n["message"]["text"] for n in notes)


def test_clean_report_is_valid_with_no_results() -> None:
    report = sample_report()
    passing = tuple(f.model_copy(update={"status": Status.PASS}) for f in report.findings)
    clean = report.model_copy(
        update={"findings": passing, "summary": Summary.of(passing), "collection_issues": ()}
    )
    document = render(clean)
    assert document["runs"][0]["results"] == []
    assert schema_errors(document) == []


def multitool() -> str | None:
    configured = os.environ.get("SARIF_MULTITOOL")
    if configured:
        return configured if Path(configured).exists() else None
    found = shutil.which("Sarif.Multitool")
    return found or next((p for p in MULTITOOL_PATHS if Path(p).exists()), None)


def multitool_findings(tool: str, path: Path, tmp_path: Path) -> list[dict[str, Any]]:
    """Errors and warnings the multitool logs with the SARIF and GitHub rule sets (it exits 0)."""
    log = tmp_path / f"{path.stem}.validation.sarif"  # the multitool will not overwrite a log
    completed = subprocess.run(
        [tool, "validate", "--rule-kind", "Gh;Sarif", "-o", str(log), str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert log.exists(), f"multitool wrote no log: {completed.stdout}\n{completed.stderr}"
    document = json.loads(log.read_text(encoding="utf-8"))
    return [
        {"rule": r["ruleId"], "level": r.get("level", "warning"), "message": r["message"]}
        for run in document["runs"]
        for r in run.get("results", [])
    ]


def test_sarif_multitool_with_github_rules_reports_no_errors(tmp_path: Path) -> None:
    tool = multitool()
    if tool is None:
        pytest.skip(
            "Microsoft SARIF multitool not installed: npm install --prefix /tmp/sarif-multitool "
            "@microsoft/sarif-multitool (or set SARIF_MULTITOOL to the Sarif.Multitool binary)"
        )
    path = tmp_path / "sample.sarif"
    path.write_text(sarif.render(sample_report()), encoding="utf-8")
    findings = multitool_findings(tool, path, tmp_path)
    assert [f for f in findings if f["level"] == "error"] == []
    # The one warning left is informationUri: the project has no public home page to name.
    assert {f["rule"] for f in findings} <= {"SARIF2005"}

    # The same run catches what GitHub rejects, so a pass above means something.
    broken = json.loads(path.read_text(encoding="utf-8"))
    del broken["runs"][0]["results"][0]["locations"]
    broken_path = tmp_path / "broken.sarif"
    broken_path.write_text(json.dumps(broken), encoding="utf-8")
    rejected = multitool_findings(tool, broken_path, tmp_path)
    assert any(f["level"] == "error" and f["rule"].startswith("GH") for f in rejected)
