"""docs/ci/github-actions-shards.yml hides no failed shard: its shell steps run with bash as the
runner would (tests/support/steps.py), the real CLI merging real JSON reports. A shard that
wrote no report fails its job; the merge job fails, and uploads nothing, when a shard's report
is missing or a shard job did not succeed; a complete set gates on the merged findings.

Steps that need the network or another action stand in (checkout, setup-python, pip install,
Azure sign-in, artifact upload and download, SARIF upload) and are named, so none is skipped
silently. Live collection in a shard is the bundled snapshot (tests/support/offline_cli.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from engram_audit.collectors.azure.request import estate_digest
from engram_audit.model.report import RunContext
from engram_audit.model.snapshot import AzureShard
from engram_audit.reporters import json_report
from tests.conftest import ROOT, SNAPSHOTS
from tests.golden.sample import sample_report
from tests.support import offline_cli
from tests.support.steps import Run, StandIn, StepRunner, clean_environment

RECIPE = ROOT / "docs" / "ci" / "github-actions-shards.yml"
SHARD_STEP = "Audit this shard"
MERGE_STEP = "Merge the shards"
SHARD_STAND_INS = {
    "actions/checkout@v4": StandIn(),
    "actions/setup-python@v5": StandIn(),
    "pip install .": StandIn(),
    "azure/login@v2": StandIn(),
    "actions/upload-artifact@v4": StandIn(),
}
MERGE_STAND_INS = {
    "actions/checkout@v4": StandIn(),
    "actions/setup-python@v5": StandIn(),
    "pip install .": StandIn(),
    "actions/download-artifact@v4": StandIn(),  # the shard-*.json files the test wrote
    "github/codeql-action/upload-sarif@v3": StandIn(),
}
UPLOAD = "github/codeql-action/upload-sarif@v3"


def _run(job: str, repository: Path, contexts: dict[str, dict[str, str]], **env: str) -> Run:
    bin_dir = repository.parent / "bin"
    offline_cli.install(bin_dir)
    data: dict[str, Any] = YAML(typ="safe").load(RECIPE.read_text(encoding="utf-8"))
    runner = StepRunner(
        workdir=repository,
        contexts={"vars": {}, "secrets": {}, **contexts},
        base_env={**clean_environment(bin_dir), **env},
        stand_ins=SHARD_STAND_INS if job == "shard" else MERGE_STAND_INS,
    )
    return runner.run(data["jobs"][job]["steps"], data.get("env", {}))


def _write_shards(repository: Path, indexes: tuple[int, ...], *, clean: bool = False) -> None:
    """Shards 1-4 of one run over two servers: shard 1 has every finding of the sample (none
    when ``clean``: a passing estate), the others none."""
    estate = estate_digest(["/subscriptions/s/a", "/subscriptions/s/b"])
    report = sample_report()
    if clean:
        report = report.model_copy(update={"findings": (), "collection_issues": ()})
    for index in indexes:
        shard = AzureShard(index=index, count=4, servers_found=2, estate=estate)
        part = report.model_copy(
            update={
                "context": RunContext(shard=shard),
                "findings": report.findings if index == 1 else (),
                "collection_issues": report.collection_issues if index == 1 else (),
            }
        )
        path = repository / f"shard-{index}.json"
        path.write_text(json_report.render(part), encoding="utf-8")


def test_a_shard_that_writes_its_report_passes_on_whatever_it_found(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    repository.mkdir()
    snapshot = str(SNAPSHOTS / "prod-drifted.json")

    run = _run("shard", repository, {"matrix": {"shard": "2"}}, ENGRAM_AUDIT_TEST_SNAPSHOT=snapshot)

    assert not run.failed, run.log()
    assert "engram-audit exited 1" in run.log()  # failures: the merge job's to gate on
    assert (repository / "shard-2.json").stat().st_size > 0


def test_a_shard_that_writes_no_report_fails_its_job(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    repository.mkdir()
    missing = str(tmp_path / "no-such-snapshot.json")  # the CLI stops with exit 2, no report

    run = _run("shard", repository, {"matrix": {"shard": "3"}}, ENGRAM_AUDIT_TEST_SNAPSHOT=missing)

    audit = run.step(SHARD_STEP)
    assert audit.ran and audit.returncode != 0, run.log()
    assert not (repository / "shard-3.json").exists()
    assert "actions/upload-artifact@v4" in run.not_run


def test_the_merge_job_gates_on_a_complete_set(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    repository.mkdir()
    _write_shards(repository, (1, 2, 3, 4))

    run = _run("merge", repository, {"needs": {"shard.result": "success"}})

    gate = run.step(MERGE_STEP)
    assert gate.outputs["code"] == "3", run.log()  # the sample has errors: incomplete
    assert (repository / "estate.sarif").is_file() and run.summary
    assert UPLOAD in run.stood_in
    assert run.step("Fail when a shard job did not succeed").ran is False
    assert run.step("Gate on the whole estate").returncode == 3


def test_the_merge_job_fails_without_every_shard_and_uploads_nothing(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    repository.mkdir()
    _write_shards(repository, (1, 2, 4))  # shard 3's job died before writing its report

    run = _run("merge", repository, {"needs": {"shard.result": "failure"}})

    gate = run.step(MERGE_STEP)
    assert gate.returncode == 0 and gate.outputs["code"] == "2", run.log()
    assert "shard 3/4 is missing" in gate.stderr
    assert not (repository / "estate.sarif").exists()
    assert UPLOAD in run.not_run
    refused = run.step("Fail when a shard job did not succeed")
    assert refused.returncode == 2 and "shard jobs: failure" in refused.stdout
    assert run.step("Gate on the whole estate").ran is False  # the job has already failed


def test_the_merge_job_fails_when_a_shard_job_failed_even_with_every_report(
    tmp_path: Path,
) -> None:
    repository = tmp_path / "repo"
    repository.mkdir()
    _write_shards(repository, (1, 2, 3, 4), clean=True)

    run = _run("merge", repository, {"needs": {"shard.result": "failure"}})

    assert run.step(MERGE_STEP).outputs["code"] == "0", run.log()  # merge alone would pass
    assert run.step("Fail when a shard job did not succeed").returncode == 2
