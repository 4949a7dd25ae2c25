"""The CI recipes work when copied: the shell steps of docs/ci/github-actions.yml and
docs/ci/azure-pipelines.yml run with bash in an empty repository, as the runner or agent would
run them, against the bundled snapshots.

Live collection is replaced by a bundled snapshot (``tests/support/offline_cli.py``); steps that
need the network or another action (checkout, setup-python, pip install, Azure sign-in, uploads,
the artifact download) cannot run here and are named explicitly, so none is skipped silently.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import ROOT, SNAPSHOTS
from tests.support import offline_cli
from tests.support.steps import AzurePipelineRunner, Run, StandIn, StepRunner, clean_environment

WORKFLOW = ROOT / "docs" / "ci" / "github-actions.yml"

RELEASE_GATE_STAND_INS = {
    "actions/checkout@v7": StandIn(),
    "actions/setup-python@v7": StandIn(),
    "Install engram-audit": StandIn(),  # pip install from the package index
    "Sign in to Azure": StandIn(),
    "Upload SARIF to code scanning": StandIn(),
    "Keep the reports": StandIn(),
}
NIGHTLY_STAND_INS = {
    "actions/checkout@v7": StandIn(),
    "actions/setup-python@v7": StandIn(),
    "Install engram-audit": StandIn(),
    "Sign in to Azure": StandIn(),
    "Keep tonight's snapshot for tomorrow": StandIn(),
    "Upload SARIF to code scanning": StandIn(),
}
FETCH_PREVIOUS = "Fetch the previous night's snapshot and report"  # gh: the GitHub API


def workflow() -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(WORKFLOW.read_text(encoding="utf-8"))
    return data


def run_job(
    job: str,
    repository: Path,
    snapshot: str,
    event: str,
    stand_ins: dict[str, StandIn],
) -> Run:
    bin_dir = repository.parent / f"{repository.name}-bin"
    offline_cli.install(bin_dir)
    base_env = clean_environment(bin_dir)
    base_env[offline_cli.SNAPSHOT_VARIABLE] = str(SNAPSHOTS / f"{snapshot}.json")
    data = workflow()
    runner = StepRunner(
        workdir=repository,
        contexts={
            "github": {"event_name": event, "token": "test-token", "workspace": str(repository)},
            "vars": {
                "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
                "AZURE_CLIENT_ID": "client",
                "AZURE_TENANT_ID": "tenant",
            },
            "secrets": {},
        },
        base_env=base_env,
        stand_ins=stand_ins,
    )
    jobs = data["jobs"]
    assert runner.evaluate(jobs[job]["if"]), f"{job} does not run on {event}"
    return runner.run(jobs[job]["steps"], {**data.get("env", {}), **jobs[job].get("env", {})})


def sarif_of(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """An empty checkout: no policies/ (the built-in set is used), no waivers file."""
    path = tmp_path / "repo"
    path.mkdir()
    return path


def test_release_gate_publishes_reports_then_fails_on_findings(repository: Path) -> None:
    run = run_job("release-gate", repository, "prod-drifted", "push", RELEASE_GATE_STAND_INS)
    assert run.stood_in == list(RELEASE_GATE_STAND_INS), run.log()
    audit = run.step("Audit prod (live, read-only)")
    assert audit.returncode == 0, run.log()  # the exit code is captured, not raised
    assert audit.outputs["exit-code"] == "1"
    sarif = sarif_of(repository / "engram-audit.sarif")
    assert sarif["runs"][0]["automationDetails"]["id"] == "engram-audit/prod/"
    assert sarif["runs"][0]["results"]
    assert sarif["runs"][0]["properties"]["waivedFindings"] == []  # no waivers.yaml
    for name in ("engram-audit.xml", "engram-audit.md", "engram-audit.json"):
        assert (repository / name).is_file(), name
    assert "## engram-audit: prod: FAIL" in run.summary
    assert run.not_run == []
    gate = run.step("Gate on the audit (exit 1 failures, 2 invalid input, 3 incomplete)")
    assert gate.ran and gate.returncode == 1


def test_release_gate_passes_a_compliant_environment(repository: Path) -> None:
    run = run_job(
        "release-gate", repository, "prod-compliant", "workflow_dispatch", RELEASE_GATE_STAND_INS
    )
    assert not run.failed, run.log()
    assert run.step("Audit prod (live, read-only)").outputs["exit-code"] == "0"
    assert sarif_of(repository / "engram-audit.sarif")["runs"][0]["results"] == []


def test_release_gate_uses_the_waivers_file_when_there_is_one(repository: Path) -> None:
    # Any failing finding will do: take one from a first run without waivers.
    first = run_job("release-gate", repository, "prod-drifted", "push", RELEASE_GATE_STAND_INS)
    report = json.loads((repository / "engram-audit.json").read_text(encoding="utf-8"))
    target = next(f for f in report["findings"] if f["status"] == "fail")
    assert first.step("Audit prod (live, read-only)").outputs["exit-code"] == "1"
    (repository / "waivers.yaml").write_text(
        "apiVersion: engram-audit/v1\nwaivers:\n"
        f"  - rule: {target['rule']}\n"
        f"    resource: {json.dumps(target['resource'])}\n"
        "    reason: accepted for the test\n"
        "    owner: test@example.com\n"
        "    ticket: T-1\n"
        "    expires: 2099-12-31\n",
        encoding="utf-8",
    )
    run_job("release-gate", repository, "prod-drifted", "push", RELEASE_GATE_STAND_INS)
    waived = sarif_of(repository / "engram-audit.sarif")["runs"][0]["properties"]["waivedFindings"]
    assert [w["ruleId"] for w in waived] == [target["rule"]]


def test_release_gate_with_invalid_input_publishes_nothing_and_exits_2(repository: Path) -> None:
    (repository / "policies").mkdir()
    (repository / "policies" / "prod.yaml").write_text(
        "apiVersion: engram-audit/v1\nenvironment: prod\nrules:\n  - id: X\n    severity: urgent\n",
        encoding="utf-8",
    )
    run = run_job("release-gate", repository, "prod-drifted", "push", RELEASE_GATE_STAND_INS)
    assert run.step("Audit prod (live, read-only)").outputs["exit-code"] == "2"
    assert run.not_run == ["Job summary", "Upload SARIF to code scanning", "Keep the reports"]
    assert run.stood_in == [n for n in RELEASE_GATE_STAND_INS if n not in run.not_run]
    gate = run.step("Gate on the audit (exit 1 failures, 2 invalid input, 3 incomplete)")
    assert gate.returncode == 2


def test_nightly_drift_first_night_then_a_drifted_night(tmp_path: Path) -> None:
    first = tmp_path / "night1"
    first.mkdir()
    night1 = run_job(
        "nightly-drift",
        first,
        "prod-compliant",
        "schedule",
        {**NIGHTLY_STAND_INS, FETCH_PREVIOUS: StandIn()},
    )
    assert night1.stood_in == [
        *list(NIGHTLY_STAND_INS)[:4],
        FETCH_PREVIOUS,
        *list(NIGHTLY_STAND_INS)[4:],
    ]
    assert not night1.failed, night1.log()
    assert night1.not_run == [
        "Drift since last night (exit 1 on drift)",
        "Gate on failures new since last night",
    ]
    for name in ("snapshot.json", "report.json", "report.md", "engram-audit.sarif"):
        assert (first / name).is_file(), name
    assert sarif_of(first / "engram-audit.sarif")["runs"][0]["automationDetails"]["id"] == (
        "engram-audit/prod/"
    )

    # The next night: the artifact of the first one is downloaded into previous/.
    second = tmp_path / "night2"
    (second / "previous").mkdir(parents=True)
    for name in ("snapshot.json", "report.json"):
        shutil.copy(first / name, second / "previous" / name)
    fetched = StandIn(env={"HAVE_PREVIOUS": "true"})
    night2 = run_job(
        "nightly-drift",
        second,
        "prod-drifted",
        "schedule",
        {**NIGHTLY_STAND_INS, FETCH_PREVIOUS: fetched},
    )
    drift = night2.step("Drift since last night (exit 1 on drift)")
    assert drift.returncode == 1, night2.log()
    assert "```" in night2.summary and "## engram-audit: prod: FAIL" in night2.summary
    new = night2.step("Gate on failures new since last night")
    assert new.ran and new.returncode == 1, night2.log()
    assert night2.not_run == ["Gate on the audit itself when there is nothing to compare"]


def test_nightly_gates_on_the_audit_when_collection_produced_nothing(tmp_path: Path) -> None:
    night = tmp_path / "night"
    (night / "policies").mkdir(parents=True)
    (night / "policies" / "prod.yaml").write_text("environment: prod\nrules: 7\n", encoding="utf-8")
    (night / "previous").mkdir()
    run = run_job(
        "nightly-drift",
        night,
        "prod-drifted",
        "schedule",
        {**NIGHTLY_STAND_INS, FETCH_PREVIOUS: StandIn(env={"HAVE_PREVIOUS": "true"})},
    )
    final = run.step("Gate on the audit itself when there is nothing to compare")
    assert final.ran and final.returncode == 2, run.log()


PIPELINE = ROOT / "docs" / "ci" / "azure-pipelines.yml"
PIPELINE_STAND_INS = {
    "UsePythonVersion@0",
    "Install engram-audit",  # pip install from the package index
    "Previous run's snapshot (nightly)",  # the pipeline artifacts API
    "Publish audit results",
    "Keep the SARIF for the Scans tab",
    "Keep tonight's snapshot for tomorrow",
}


def run_pipeline(tmp_path: Path, snapshot: str, reason: str) -> tuple[Run, Path, Path]:
    """The pipeline's steps; the AzureCLI@2 task's inline script runs (its sign-in is the
    task's own, and collection is the offline stand-in)."""
    sources, workspace = tmp_path / "s", tmp_path / "w"
    sources.mkdir(parents=True, exist_ok=True)
    workspace.mkdir(parents=True, exist_ok=True)
    bin_dir = tmp_path / "bin"
    offline_cli.install(bin_dir)
    base_env = clean_environment(bin_dir)
    base_env[offline_cli.SNAPSHOT_VARIABLE] = str(SNAPSHOTS / f"{snapshot}.json")
    data: dict[str, Any] = YAML(typ="safe").load(PIPELINE.read_text(encoding="utf-8"))
    variables = {
        "Build.ArtifactStagingDirectory": str(tmp_path / "a"),
        "Build.SourcesDirectory": str(sources),
        "Pipeline.Workspace": str(workspace),
        "Build.Reason": reason,
        **{k: str(v) for k, v in data["variables"].items()},
    }
    runner = AzurePipelineRunner(sources, variables, base_env, PIPELINE_STAND_INS)
    return runner.run(data["steps"]), tmp_path / "a" / "engram-audit", workspace


def test_azure_pipeline_publishes_reports_and_fails_on_findings(tmp_path: Path) -> None:
    run, reports, _ = run_pipeline(tmp_path, "prod-drifted", "IndividualCI")
    audit = run.step("Audit prod (live, read-only)")
    assert audit.returncode == 1, run.log()
    for name in ("engram-audit.xml", "engram-audit.sarif", "engram-audit.md", "snapshot.json"):
        assert (reports / name).is_file(), name
    assert run.stood_in == [
        "UsePythonVersion@0",
        "Install engram-audit",
        "Publish audit results",
        "Keep the SARIF for the Scans tab",
        "Keep tonight's snapshot for tomorrow",
    ]
    assert run.not_run == [
        "Previous run's snapshot (nightly)",
        "Drift since the previous run (exit 1 on drift)",
    ]
    summary = run.step("Attach the Markdown summary")
    assert summary.stdout.strip() == f"##vso[task.uploadsummary]{reports}/engram-audit.md"


def test_azure_pipeline_nightly_diffs_against_the_previous_snapshot(tmp_path: Path) -> None:
    first, reports, workspace = run_pipeline(tmp_path / "1", "prod-compliant", "Schedule")
    assert first.step("Audit prod (live, read-only)").returncode == 0, first.log()
    drift_step = "Drift since the previous run (exit 1 on drift)"
    assert first.step(drift_step).returncode == 0  # no previous snapshot: starts the series
    assert "starts the series" in first.step(drift_step).stdout
    # The next night, the artifact of the first is downloaded into $(Pipeline.Workspace)/previous.
    second_root = tmp_path / "2"
    (second_root / "w" / "previous").mkdir(parents=True)
    shutil.copy(reports / "snapshot.json", second_root / "w" / "previous" / "snapshot.json")
    second, _, _ = run_pipeline(second_root, "prod-drifted", "Schedule")
    drift = second.step(drift_step)
    assert drift.ran and drift.returncode == 1, second.log()
    assert drift.stdout.startswith("drift: ")
    assert not (workspace / "previous").exists()  # the first night had nothing to compare
