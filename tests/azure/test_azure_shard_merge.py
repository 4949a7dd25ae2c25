"""A sharded run through the real SDK against the HTTPS ARM emulator: each shard's JSON report
records which shard it is and what it split, and `merge` gates only on a complete, consistent
set (a shard job that wrote no report, or shards that saw different estates, is exit 2)."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.azure.conftest import TOKEN
from tests.support.arm_emulator import ArmEmulator, Fault
from tests.support.arm_world import fleet_world, load_world
from tests.support.cli import CliResult, run_in_process

pytestmark = pytest.mark.azure

FLEET = load_world("fleet")
SUB = FLEET["subscriptionId"]
OTHER = "0e9d8c7b-6a5f-4e3d-2c1b-0a9f8e7d6c5b"


def _prod_servers(group: str, count: int) -> dict[str, Any]:
    """``count`` prod-tagged servers in ``group`` of the second subscription."""
    template = copy.deepcopy(load_world("prod-unseen-compliant"))
    template["servers"][0]["server"]["tags"] = {"environment": "prod"}
    return fleet_world(template, OTHER, group, count)


def _check(arm: ArmEmulator, *args: str) -> CliResult:
    return run_in_process(
        "check",
        "--env",
        "prod",
        "--sources",
        "azure",
        "--subscription",
        SUB,
        "--subscription",
        OTHER,
        "--tag",
        "environment=prod",
        "--arm-endpoint",
        arm.url,
        "--azure-token-env",
        "PIPELINE_ARM_TOKEN",
        "--format",
        "json",
        *args,
        env={"REQUESTS_CA_BUNDLE": arm.ca_pem, "PIPELINE_ARM_TOKEN": TOKEN},
    )


def _shards(arm: ArmEmulator, tmp_path: Path, count: int, indexes: tuple[int, ...]) -> list[str]:
    paths = []
    for index in indexes:
        path = tmp_path / f"shard-{index}.json"
        result = _check(arm, "--shard", f"{index}/{count}", "--output", str(path))
        assert path.exists(), result.stderr
        paths.append(str(path))
    return paths


def _shard_record(path: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(Path(path).read_text())["context"]["shard"]
    return record


def _refused(result: CliResult) -> str:
    assert result.returncode == 2, result.output
    assert not result.stdout
    (line,) = result.stderr.strip().splitlines()
    return line


def test_a_complete_set_of_shards_merges_and_an_incomplete_one_is_refused(
    arm: ArmEmulator, tmp_path: Path
) -> None:
    arm.add_world(FLEET)
    arm.add_world(_prod_servers("rg-other", 2))
    snapshot = tmp_path / "whole.snapshot.json"
    whole = _check(arm, "--output", str(tmp_path / "whole.json"), "--save-snapshot", str(snapshot))
    ids = [server["id"] for server in json.loads(snapshot.read_text())["azure"]["servers"]]
    assert len(ids) == 4 and "shard" not in json.loads(snapshot.read_text())["azure"]

    shards = _shards(arm, tmp_path, 3, (1, 2, 3))

    # Each report says which shard it is and what it split: every server found, before the split.
    estate = hashlib.sha256("\n".join(sorted(i.casefold() for i in ids)).encode()).hexdigest()
    for index, path in enumerate(shards, 1):
        assert _shard_record(path) == {
            "index": index,
            "count": 3,
            "servers_found": 4,
            "estate": estate,
        }
        assert json.loads(Path(path).read_text())["schema_version"] == "1.4"

    merged = run_in_process("merge", shards[2], shards[0], shards[1], "--format", "json")
    expected = json.loads((tmp_path / "whole.json").read_text())
    got = json.loads(merged.stdout)
    assert merged.returncode == whole.returncode, merged.stderr
    assert got["findings"] == expected["findings"]
    assert got["summary"] == expected["summary"]
    assert got["collection_issues"] == expected["collection_issues"]
    assert got["context"] == expected["context"]  # no shard: the merge is the whole run's

    # One shard job wrote no report: the merge names it and exits 2, whatever the others found.
    missing = _refused(run_in_process("merge", shards[0], shards[2]))
    assert "the shards of 'prod' are not the complete set of 3: shard 2/3 is missing" in missing

    repeated = _refused(run_in_process("merge", shards[0], shards[1], shards[1]))
    assert f"shard 2/3 is given more than once ({shards[1]}, {shards[1]})" in repeated
    assert "shard 3/3 is missing" in repeated

    mixed = _refused(run_in_process("merge", *shards, str(tmp_path / "whole.json")))
    assert "is an unsharded Azure report of 'prod'" in mixed

    # The whole run's reports merge as they always did (an overlap is still refused).
    alone = run_in_process("merge", str(tmp_path / "whole.json"), "--format", "json")
    assert alone.returncode == whole.returncode
    assert json.loads(alone.stdout)["findings"] == expected["findings"]
    overlap = _refused(
        run_in_process("merge", str(tmp_path / "whole.json"), str(tmp_path / "whole.json"))
    )
    assert "the shards overlap" in overlap


def test_shards_that_saw_different_estates_are_refused(arm: ArmEmulator, tmp_path: Path) -> None:
    arm.add_world(FLEET)
    arm.add_world(_prod_servers("rg-other", 2))
    early = _shards(arm, tmp_path, 3, (1, 2))
    # A server appears between the shards (created, or Resource Graph caught up with it).
    arm.add_world(_prod_servers("rg-late", 1))
    late = _shards(arm, tmp_path, 3, (3,))

    assert [_shard_record(p)["servers_found"] for p in early + late] == [4, 4, 5]
    line = _refused(run_in_process("merge", *early, *late))
    assert "the shards of 'prod' split different estates" in line
    assert f"shard 3/3 ({late[0]}): 5 servers" in line
    assert f"shards 1/3 ({early[0]}), 2/3 ({early[1]}): 4 servers" in line


def test_a_shard_whose_discovery_failed_makes_the_merge_incomplete(
    arm: ArmEmulator, tmp_path: Path
) -> None:
    arm.add_world(FLEET)
    arm.add_world(_prod_servers("rg-other", 2))
    first = _shards(arm, tmp_path, 2, (1,))
    arm.inject(r"/Microsoft.ResourceGraph/resources$", Fault(status=403, error_code="Forbidden"))
    failed = _shards(arm, tmp_path, 2, (2,))
    arm.clear_faults()

    report = json.loads(Path(failed[0]).read_text())
    assert report["context"]["shard"] == {
        "index": 2,
        "count": 2,
        "servers_found": None,
        "estate": None,
    }
    assert report["collection_issues"]

    merged = run_in_process("merge", *first, *failed, "--format", "json")
    assert merged.returncode == 3, merged.output  # never 0: half the estate was not audited
    assert json.loads(merged.stdout)["collection_issues"]


def test_a_sharded_snapshot_keeps_its_shard_into_the_report(
    arm: ArmEmulator, tmp_path: Path
) -> None:
    arm.add_world(FLEET)
    arm.add_world(_prod_servers("rg-other", 2))
    snapshot = tmp_path / "shard-1.snapshot.json"
    _check(
        arm,
        "--shard",
        "1/2",
        "--save-snapshot",
        str(snapshot),
        "--output",
        str(tmp_path / "live.json"),
    )

    saved = json.loads(snapshot.read_text())
    assert saved["schema_version"] == "1.3"
    assert saved["azure"]["shard"]["index"] == 1 and saved["azure"]["shard"]["servers_found"] == 4

    offline = tmp_path / "offline.json"
    run_in_process(
        "check",
        "--env",
        "prod",
        "--sources",
        "azure",
        "--snapshot",
        str(snapshot),
        "--format",
        "json",
        "--output",
        str(offline),
    )
    assert _shard_record(str(offline)) == _shard_record(str(tmp_path / "live.json"))
    # Without the Azure source the report is of no shard.
    postgres_only = tmp_path / "pg.json"
    run_in_process(
        "check",
        "--env",
        "prod",
        "--sources",
        "postgres",
        "--snapshot",
        str(snapshot),
        "--format",
        "json",
        "--output",
        str(postgres_only),
    )
    assert json.loads(postgres_only.read_text())["context"] is None
    # ... and may join the shards (the PostgreSQL/DSN job's report beside the Azure shards).
    second = _shards(arm, tmp_path, 2, (2,))
    joined = run_in_process("merge", str(tmp_path / "live.json"), *second, str(postgres_only))
    assert joined.returncode != 2, joined.stderr
    everything = run_in_process(
        "merge", str(tmp_path / "live.json"), *second, str(postgres_only), "--format", "json"
    )
    assert json.loads(everything.stdout)["sources"] == ["azure", "postgres"]
