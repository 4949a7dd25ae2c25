"""The CLI end to end, as a user runs it: a real process, real files, exit codes, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SNAPSHOTS, snapshot_data
from tests.support.cli import run_in_process, run_process

run = run_in_process


def test_validate_bundled_policies() -> None:
    result = run_process("validate", "policies")
    assert result.returncode == 0, result.stderr
    assert "7 policy file(s) valid" in result.stdout
    assert "policies/presets/zep-legacy.yaml" in result.stdout


def test_validate_broken_policy_exits_2_with_file_line_and_key(tmp_path: Path) -> None:
    broken = tmp_path / "prod.yaml"
    broken.write_text(
        "environment: prod\nextends: nowhere.yaml\nrules:\n  - id: A\n    chek: azure.sku.tier\n",
        encoding="utf-8",
    )
    result = run("validate", str(broken))
    assert result.returncode == 2
    assert f"{broken.as_posix()}:2:10: [extends] base file not found: nowhere.yaml" in result.stderr
    assert ":5:5: [rules[0].chek] unknown key 'chek'" in result.stderr


def test_compliant_prod_snapshot_exits_0() -> None:
    result = run("check", "--env", "prod", "--snapshot", "fixtures/snapshots/prod-compliant.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout


@pytest.mark.parametrize("environment", ["staging", "dev", "uat", "prod"])
def test_every_environment_compliant_passes_and_drifted_fails(environment: str) -> None:
    clean = run(
        "check",
        "--env",
        environment,
        "--snapshot",
        f"fixtures/snapshots/{environment}-compliant.json",
    )
    drifted = run(
        "check",
        "--env",
        environment,
        "--snapshot",
        f"fixtures/snapshots/{environment}-drifted.json",
    )
    assert (clean.returncode, drifted.returncode) == (0, 1), clean.stdout + drifted.stdout


def test_drifted_prod_lists_violations_with_expected_and_actual() -> None:
    result = run("check", "--env", "prod", "--snapshot", "fixtures/snapshots/prod-drifted.json")
    assert result.returncode == 1
    out = result.stdout
    assert "FAIL (" in out and "ZEP-AZ-BACKUP-RETENTION" in out
    assert "expected  >= 35 days" in out and "actual    7 days" in out
    assert "\033[" not in out, "no colour when stdout is not a terminal"


def test_snapshot_without_azure_section_exits_3(tmp_path: Path) -> None:
    data = snapshot_data("prod-compliant")
    del data["azure"]
    path = tmp_path / "no-azure.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    result = run("check", "--env", "prod", "--snapshot", str(path))
    assert result.returncode == 3
    assert "ERROR (" in result.stdout and "no azure section" in result.stdout


def test_fail_on_threshold() -> None:
    result = run(
        "check",
        "--env",
        "prod",
        "--snapshot",
        "fixtures/snapshots/prod-drifted.json",
        "--sources",
        "postgres",
        "--fail-on",
        "critical",
    )
    assert result.returncode == 0, "postgres drift in prod is at most high severity"
    result = run(
        "check",
        "--env",
        "prod",
        "--snapshot",
        "fixtures/snapshots/prod-drifted.json",
        "--sources",
        "postgres",
        "--fail-on",
        "high",
    )
    assert result.returncode == 1


def test_json_contract_and_several_outputs_in_one_run(tmp_path: Path) -> None:
    result = run(
        "check",
        "--env",
        "prod",
        "--snapshot",
        "fixtures/snapshots/prod-drifted.json",
        "--format",
        "json",
        "--output",
        str(tmp_path / "report.json"),
        "-o",
        f"console:{tmp_path / 'report.txt'}",
    )
    assert result.returncode == 1
    assert "findings:" in result.stdout, "console summary still printed"
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert {"tool", "environment", "generated_at", "summary", "findings"} <= set(report)
    assert report["tool"]["name"] == "engram-audit" and report["environment"] == "prod"
    from engram_audit.checks import CHECKS_BY_ID

    for finding in report["findings"]:
        assert {
            "rule",
            "check",
            "title",
            "severity",
            "status",
            "resource",
            "expected",
            "actual",
            "message",
            "remediation",
        } <= set(finding)
        assert finding["check"] in CHECKS_BY_ID
    assert report["summary"]["by_status"]["fail"] == sum(
        f["status"] == "fail" for f in report["findings"]
    )
    assert (tmp_path / "report.txt").read_text(encoding="utf-8").startswith("engram-audit ")


def test_json_to_stdout() -> None:
    result = run(
        "check",
        "--env",
        "uat",
        "--snapshot",
        "fixtures/snapshots/uat-compliant.json",
        "--format",
        "json",
    )
    assert result.returncode == 0
    assert json.loads(result.stdout)["summary"]["by_status"]["fail"] == 0


def test_unknown_environment_and_malformed_snapshot_are_input_errors(tmp_path: Path) -> None:
    result = run("check", "--env", "qa", "--snapshot", "fixtures/snapshots/prod-compliant.json")
    assert (
        result.returncode == 2
        and "no policy for environment 'qa'" in result.stderr
        and "prod" in result.stderr
    )
    bad = tmp_path / "bad.json"
    data = snapshot_data("prod-compliant")
    data["postgres"]["databases"][0]["port"] = "not-a-port"
    bad.write_text(json.dumps(data, indent=2), encoding="utf-8")
    result = run("check", "--env", "prod", "--snapshot", str(bad))
    assert result.returncode == 2
    assert "[postgres.databases[0].port] invalid snapshot" in result.stderr
    missing = run("check", "--env", "prod", "--snapshot", str(tmp_path / "absent.json"))
    assert missing.returncode == 2 and "file not found" in missing.stderr


def test_bad_flags_are_usage_errors() -> None:
    result = run(
        "check",
        "--env",
        "prod",
        "--snapshot",
        "fixtures/snapshots/prod-compliant.json",
        "--sources",
        "azure,ldap",
    )
    assert result.returncode == 2 and "unknown source 'ldap'" in result.stderr
    result = run(
        "check",
        "--env",
        "prod",
        "--snapshot",
        "fixtures/snapshots/prod-compliant.json",
        "-o",
        "pdf:x.pdf",
    )
    assert result.returncode == 2 and "FORMAT:PATH" in result.stderr


def test_checks_and_explain() -> None:
    listing = run("checks")
    assert listing.returncode == 0 and "pg.vector.index" in listing.stdout
    explained = run("explain", "pg.vector.index")
    assert (
        explained.returncode == 0
        and "Remediation:" in explained.stdout
        and "allowed_methods" in explained.stdout
    )
    unknown = run("explain", "pg.nope")
    assert unknown.returncode == 2 and "unknown check id" in unknown.stderr


def test_snapshot_fixtures_match_the_shipped_schema() -> None:
    from jsonschema import Draft202012Validator

    from engram_audit.schemas import SNAPSHOT_SCHEMA, shipped

    validator = Draft202012Validator(shipped(SNAPSHOT_SCHEMA))
    for path in sorted(SNAPSHOTS.glob("*.json")):
        errors = list(validator.iter_errors(json.loads(path.read_text(encoding="utf-8"))))
        assert not errors, f"{path.name}: {errors[0].message}"
    assert (
        len(list(SNAPSHOTS.glob("*-compliant.json"))) == 4
        and len(list(SNAPSHOTS.glob("*-drifted.json"))) == 4
    )


def test_dsn_only_run_needs_no_target() -> None:
    result = run(
        "check",
        "--env",
        "prod",
        "--sources",
        "dsn",
        env={"ZEP_STORE_POSTGRES_DSN": "postgresql://zep:s3cret-pw@db.example:5432/zep"},
    )
    assert result.returncode == 1
    assert "actual    sslmode=prefer" in result.stdout
    assert "s3cret-pw" not in result.stdout + result.stderr


def test_unwritable_report_path_is_input_error_after_showing_findings() -> None:
    result = run(
        "check",
        "--env",
        "prod",
        "--snapshot",
        "fixtures/snapshots/prod-drifted.json",
        "-o",
        "json:/proc/engram/x.json",
    )
    assert result.returncode == 2
    assert "cannot write the json report" in result.stderr
    assert "22 failed" in result.stdout, "findings are printed even when a file cannot be written"


def test_verbose_after_the_subcommand_and_empty_sources() -> None:
    result = run(
        "check", "-v", "--env", "uat", "--snapshot", "fixtures/snapshots/uat-compliant.json"
    )
    assert result.returncode == 0 and "DEBUG engram_audit.cli.common: policy uat" in result.stderr
    empty = run(
        "check",
        "--env",
        "uat",
        "--sources",
        "",
        "--snapshot",
        "fixtures/snapshots/uat-compliant.json",
    )
    assert empty.returncode == 2 and "give at least one of azure, postgres, dsn" in empty.stderr


def test_info_findings_below_the_gate_do_not_turn_reports_red(tmp_path: Path) -> None:
    data = snapshot_data("prod-compliant")
    data["postgres"]["databases"][0]["expired_facts"]["count"] = 5
    path = tmp_path / "info-only.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    markdown, junit = tmp_path / "summary.md", tmp_path / "junit.xml"
    result = run(
        "check",
        "--env",
        "prod",
        "--snapshot",
        str(path),
        "-o",
        f"markdown:{markdown}",
        "-o",
        f"junit:{junit}",
    )
    assert result.returncode == 0
    assert "1 failed (1 info)" in result.stdout, "still reported"
    assert markdown.read_text(encoding="utf-8").startswith("## engram-audit: prod: PASS")
    assert "<failure" not in junit.read_text(encoding="utf-8")
    gated = run(
        "check",
        "--env",
        "prod",
        "--snapshot",
        str(path),
        "--fail-on",
        "info",
        "-o",
        f"junit:{junit}",
    )
    assert gated.returncode == 1 and "<failure" in junit.read_text(encoding="utf-8")
