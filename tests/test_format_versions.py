"""Snapshots and JSON reports are versioned contracts: every minor version of the current major
is read (the first formats included), another major is refused with exit 2 and a reason."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from engram_audit.model import Report
from engram_audit.reporters import json_report
from engram_audit.schemas import REPORT_SCHEMA, shipped
from tests.conftest import snapshot_data
from tests.golden.sample import sample_report
from tests.support.cli import run_in_process as run


def test_the_json_report_carries_its_version_and_fits_its_shipped_schema() -> None:
    document = json.loads(json_report.render(sample_report()))
    assert document["schema_version"] == "1.4"
    jsonschema.Draft202012Validator(shipped(REPORT_SCHEMA)).validate(document)


def test_a_1_2_report_links_github_policy_lines_from_its_server_and_repository() -> None:
    from engram_audit.model.policy import SourceLocation
    from engram_audit.model.report import RunContext
    from engram_audit.reporters.links import policy_line_url

    # 1.2 recorded no repository_url: the GitHub link is still built from server + repository.
    context = RunContext.model_validate(
        {
            "ci": "github-actions",
            "repository": "o/r",
            "commit": "abc",
            "server_url": "https://github.com",
        }
    )
    url = policy_line_url(SourceLocation(path="policies/prod.yaml", line=7, column=1), context)
    assert url == "https://github.com/o/r/blob/abc/policies/prod.yaml#L7"


def test_a_1_3_report_without_a_shard_is_read_as_no_shard() -> None:
    from engram_audit.model.report import RunContext

    # 1.3 recorded no context.shard: such a report is of a whole run (merge treats it so).
    document = json.loads(json_report.render(sample_report()))
    document["schema_version"] = "1.3"
    document["context"] = {"ci": "github-actions", "repository": "o/r"}
    report = Report.model_validate(document)
    assert report.schema_version == "1.3"
    assert report.context == RunContext(ci="github-actions", repository="o/r", shard=None)


def test_a_1_1_report_without_facts_is_still_read() -> None:
    document = json.loads(json_report.render(sample_report()))
    document["schema_version"] = "1.1"
    del document["gate"]
    for finding in document["findings"]:
        finding.pop("facts", None)
    report = Report.model_validate(document)
    assert report.schema_version == "1.1" and all(f.facts == {} for f in report.findings)


def test_a_report_of_the_first_format_is_still_read(tmp_path: Path) -> None:
    document = json.loads(json_report.render(sample_report()))
    del document["schema_version"], document["gate"]  # what version 1.0 wrote
    old = tmp_path / "old.json"
    old.write_text(json.dumps(document), encoding="utf-8")
    new = tmp_path / "new.json"
    new.write_text(json_report.render(sample_report()), encoding="utf-8")
    result = run("diff", str(old), str(new))
    assert result.returncode == 0, result.stderr
    assert "no drift" in result.stdout


def test_a_report_of_a_newer_major_is_refused_with_the_reason(tmp_path: Path) -> None:
    document = json.loads(json_report.render(sample_report()))
    document["schema_version"] = "2.0"
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(document), encoding="utf-8")
    result = run("diff", str(newer), str(newer))
    assert result.returncode == 2
    assert "report schema version '2.0' cannot be read" in result.stderr
    assert "upgrade engram-audit" in result.stderr


def test_snapshots_of_version_1_and_1_x_are_read_and_2_is_refused(tmp_path: Path) -> None:
    for version, expected_code in ((1, 0), ("1.0", 0), ("1.7", 0), ("2.0", 2)):
        data = snapshot_data("prod-compliant")
        data["schema_version"] = version
        path = tmp_path / f"snapshot-{version}.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        result = run("check", "--env", "prod", "--snapshot", str(path))
        assert result.returncode == expected_code, (version, result.stderr)
        if expected_code == 2:
            assert "snapshot schema version '2.0' cannot be read" in result.stderr
