"""One run for the whole estate: several environments, the inventory, one output per format."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import xmlschema

from engram_audit.cli.estate import RunRequest, plan_runs
from engram_audit.cli.gate_options import GateOptions
from tests.conftest import SNAPSHOTS, snapshot_data
from tests.golden.sample import REFERENCE_SCHEMAS
from tests.support.cli import run_in_process as run

SUB = "00000000-0000-0000-0000-0000000000aa"


def _inventory(directory: Path, body: str) -> Path:
    path = directory / "engram-audit.yaml"
    path.write_text("apiVersion: engram-audit/v1\nenvironments:\n" + body, encoding="utf-8")
    return path


def test_two_snapshots_one_run_one_file_per_format(tmp_path: Path) -> None:
    sarif, junit, report = tmp_path / "r.sarif", tmp_path / "r.xml", tmp_path / "r.json"
    result = run(
        "check",
        "--snapshot",
        str(SNAPSHOTS / "uat-drifted.json"),
        "--snapshot",
        str(SNAPSHOTS / "prod-compliant.json"),
        "-o",
        f"sarif:{sarif}",
        "-o",
        f"junit:{junit}",
        "-o",
        f"json:{report}",
    )
    assert result.returncode == 1, result.stderr  # uat fails, prod is clean: the worst wins
    assert "environment uat" in result.stdout and "environment prod" in result.stdout
    matrix = result.stdout.split("ESTATE: rules x environments", 1)[1].splitlines()
    assert matrix[1].split() == ["rule", "uat", "prod"]
    assert any(line.split()[1:] == ["fail", "pass"] for line in matrix[2:] if line.strip())

    runs = json.loads(sarif.read_text())["runs"]
    assert [r["automationDetails"]["id"] for r in runs] == [
        "engram-audit/uat/",
        "engram-audit/prod/",
    ]
    xmlschema.XMLSchema(str(REFERENCE_SCHEMAS / "jenkins-xunit-junit-10.xsd")).validate(str(junit))
    packages = {suite.get("package") for suite in ET.parse(junit).getroot()}
    assert packages == {"uat", "prod"}
    combined = json.loads(report.read_text())
    assert [entry["environment"] for entry in combined["environments"]] == ["uat", "prod"]


def test_the_exit_code_is_the_worst_of_the_environments(tmp_path: Path) -> None:
    broken = snapshot_data("staging-compliant")
    broken["issues"] = [{"source": "azure", "resource": "scope", "part": None, "reason": "403"}]
    incomplete = tmp_path / "staging.json"
    incomplete.write_text(json.dumps(broken), encoding="utf-8")
    both = ("--snapshot", str(SNAPSHOTS / "prod-drifted.json"), "--snapshot", str(incomplete))
    assert run("check", *both).returncode == 3
    clean = ("--snapshot", str(SNAPSHOTS / "prod-compliant.json"))
    assert run("check", *clean, "--snapshot", str(SNAPSHOTS / "dev-compliant.json")).returncode == 0


def test_all_takes_every_inventory_environment_with_its_own_gate(tmp_path: Path) -> None:
    shutil.copy(SNAPSHOTS / "prod-drifted.json", tmp_path / "prod.json")
    shutil.copy(SNAPSHOTS / "dev-drifted.json", tmp_path / "dev.json")
    _inventory(tmp_path, "  prod: {fail_on: critical}\n  dev: {fail_on: critical}\n")
    snapshots = ("--snapshot", "prod.json", "--snapshot", "dev.json")
    result = run("check", "--all", *snapshots, "--format", "json", cwd=tmp_path)
    document = json.loads(result.stdout)
    assert [e["environment"] for e in document["environments"]] == ["dev", "prod"]
    assert {e["fail_on"] for e in document["environments"]} == {"critical"}
    gating = sum(e["gate"]["gating_failures"] for e in document["environments"])
    assert result.returncode == (1 if gating else 0)
    flags_win = run("check", "--all", *snapshots, "--fail-on", "info", cwd=tmp_path)
    assert flags_win.returncode == 1


def test_usage_errors_are_exit_2_with_the_reason(tmp_path: Path) -> None:
    no_inventory = run("check", "--all", cwd=tmp_path)
    assert no_inventory.returncode == 2 and "--all audits every environment" in no_inventory.stderr
    prod = str(SNAPSHOTS / "prod-drifted.json")
    twice = run("check", "--snapshot", prod, "--snapshot", prod)
    assert twice.returncode == 2 and "both snapshots of 'prod'" in twice.stderr
    unpaired = run("check", "--env", "uat", "--env", "prod", "--snapshot", prod)
    assert unpaired.returncode == 2 and "no --snapshot names environment 'uat'" in unpaired.stderr
    nothing = run("check")
    assert nothing.returncode == 2 and "give --env ENV" in nothing.stderr


def test_inventory_dsn_variables_replace_the_rule_variables(tmp_path: Path) -> None:
    _inventory(tmp_path, "  prod:\n    dsn_env: [APP_DSN]\n")
    env = {"APP_DSN": "postgresql://zep@db.example/zep?sslmode=disable"}
    result = run(
        "check", "--env", "prod", "--sources", "dsn", "--format", "json", cwd=tmp_path, env=env
    )
    findings = json.loads(result.stdout)["findings"]
    dsn = [f for f in findings if f["check"] == "dsn.sslmode"]
    assert {f["resource"] for f in dsn} == {"env:APP_DSN"}
    assert [f["status"] for f in dsn] == ["fail"]


def test_inventory_targets_become_collection_requests_and_flags_win(tmp_path: Path) -> None:
    inventory = _inventory(
        tmp_path,
        f"  prod:\n    azure: {{subscriptions: ['{SUB}'], resource_group: engram-rg, "
        "servers: [zep-prod-db]}\n    postgres: {dsn_env: AUDIT_DSN}\n  dev: {}\n",
    )
    request = RunRequest(
        environments=(),
        all_environments=True,
        snapshots=(),
        config=inventory,
        policy_path=None,
        policy_dir=None,
        fail_on=None,
        gate=GateOptions(),
        options={"timeout": 30},
    )
    import os

    os.environ["AUDIT_DSN"] = "host=db.example dbname=zep user=auditor"
    try:
        runs = {run.name: run for run in plan_runs(request)}
    finally:
        del os.environ["AUDIT_DSN"]
    azure = runs["prod"].targets.azure
    assert azure is not None
    assert (azure.subscription_id, azure.resource_group, azure.server_name) == (
        SUB,
        "engram-rg",
        "zep-prod-db",
    )
    assert azure.timeout_seconds == 30
    assert runs["prod"].targets.postgres is not None
    assert runs["dev"].targets.azure is None and runs["dev"].targets.postgres is None


def test_collect_all_writes_one_snapshot_per_environment(tmp_path: Path) -> None:
    _inventory(tmp_path, "  prod: {}\n  staging: {}\n")
    result = run(
        "collect", "--all", "--sources", "dsn", "--output-dir", "out", cwd=tmp_path, env={}
    )
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["prod.json", "staging.json"]
    assert json.loads((tmp_path / "out" / "staging.json").read_text())["environment"] == "staging"
