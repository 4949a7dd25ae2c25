"""``engram-audit diff`` as a nightly job runs it: real process, real files, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from engram_audit.model import Status, Summary
from engram_audit.reporters import json_report
from tests.conftest import snapshot_data
from tests.golden.sample import sample_report
from tests.test_cli import run

COMPLIANT = "fixtures/snapshots/prod-compliant.json"
DRIFTED = "fixtures/snapshots/prod-drifted.json"


def test_snapshot_drift_exits_1_and_lists_old_and_new_values() -> None:
    result = run("diff", COMPLIANT, DRIFTED)
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("drift: 3 resource(s) changed")
    assert (
        '    resource.properties.backup.geoRedundantBackup: "Enabled" -> "disabled"'
        in result.stdout
    )
    assert '    sslmode: "verify-full" -> "prefer"' in result.stdout


def test_same_snapshot_exits_0() -> None:
    result = run("diff", DRIFTED, DRIFTED)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("no drift:")


def test_json_output_for_scripts() -> None:
    result = run("diff", "--format", "json", COMPLIANT, DRIFTED)
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["kind"] == "snapshot"
    assert document["drift"] is True
    dsn = next(r for r in document["resources"] if r["resource"] == "env:ZEP_STORE_POSTGRES_DSN")
    assert {"property": "sslmode", "old": "verify-full", "new": "prefer"} in dsn["changes"]


def test_uncomparable_part_without_drift_exits_3(tmp_path: Path) -> None:
    data = snapshot_data("prod-drifted")
    data["azure"]["servers"][0]["firewall_rules"] = None
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(data), encoding="utf-8")
    result = run("diff", DRIFTED, str(partial))
    assert result.returncode == 3
    assert "firewall_rules not collected in the new snapshot" in result.stdout


def test_report_diff_new_and_fixed(tmp_path: Path) -> None:
    old = sample_report()
    worse = tuple(
        f.model_copy(update={"status": Status.FAIL}) if f.status is Status.PASS else f
        for f in old.findings
    )
    new = old.model_copy(update={"findings": worse, "summary": Summary.of(worse)})
    old_path, new_path = tmp_path / "old.json", tmp_path / "new.json"
    old_path.write_text(json_report.render(old), encoding="utf-8")
    new_path.write_text(json_report.render(new), encoding="utf-8")
    result = run("diff", str(old_path), str(new_path))
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("drift: 2 new, 0 fixed, 6 unchanged")
    assert "medium   prod.backup.retention_days on" in result.stdout
    same = run("diff", str(old_path), str(old_path))
    assert same.returncode == 0
    assert same.stdout.startswith("no drift: 0 new, 0 fixed, 6 unchanged")


def test_bad_input_exits_2_without_traceback(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    report.write_text(json_report.render(sample_report()), encoding="utf-8")
    mixed = run("diff", DRIFTED, str(report))
    assert mixed.returncode == 2
    assert "is a snapshot and" in mixed.stderr
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{oops", encoding="utf-8")
    assert run("diff", str(garbage), DRIFTED).returncode == 2
    missing = run("diff", str(tmp_path / "absent.json"), DRIFTED)
    assert missing.returncode == 2
    assert "file not found" in missing.stderr
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}', encoding="utf-8")
    assert (
        "neither an engram-audit snapshot nor a JSON report"
        in run("diff", str(other), str(other)).stderr
    )
