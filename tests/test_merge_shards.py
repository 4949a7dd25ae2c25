"""`merge` takes shards only as a complete, consistent set: every index of one N once, all of
the same estate; reports without shards merge as before. Reports built from the golden sample
(its findings split between two shards) and merged through the CLI; the sharded run through
the ARM emulator is in tests/azure/test_azure_shard_merge.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from engram_audit.collectors.azure.request import estate_digest
from engram_audit.model import Report
from engram_audit.model.report import RunContext
from engram_audit.model.snapshot import AzureShard
from engram_audit.reporters import json_report
from tests.golden.sample import REPLICA, sample_report
from tests.support.cli import run_in_process as run

ESTATE = estate_digest(["/subscriptions/S/a", "/subscriptions/S/b"])


def _halves() -> tuple[Report, Report]:
    """The sample's findings on the replica in one report, all the others in another."""
    report = sample_report()
    replica = tuple(f for f in report.findings if f.resource == REPLICA)
    rest = tuple(f for f in report.findings if f.resource != REPLICA)
    assert replica and rest
    return (
        report.model_copy(update={"findings": rest}),
        report.model_copy(update={"findings": replica, "collection_issues": ()}),
    )


def _shard(report: Report, index: int, count: int, **fields: Any) -> Report:
    values: dict[str, Any] = {"servers_found": 2, "estate": ESTATE, **fields}
    shard = AzureShard(index=index, count=count, **values)
    return report.model_copy(update={"context": RunContext(shard=shard)})


def _write(tmp_path: Path, name: str, report: Report) -> str:
    path = tmp_path / name
    path.write_text(json_report.render(report), encoding="utf-8")
    return str(path)


def _one_error_line(result: Any) -> str:
    assert result.returncode == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0])


def test_the_estate_digest_is_sha256_of_the_sorted_casefolded_ids() -> None:
    ids = ["/subscriptions/S/B", "/subscriptions/s/a", "/SUBSCRIPTIONS/S/b"]
    expected = hashlib.sha256(b"/subscriptions/s/a\n/subscriptions/s/b").hexdigest()
    assert estate_digest(ids) == expected
    assert estate_digest([]) == hashlib.sha256(b"").hexdigest()


def test_a_complete_set_of_shards_merges_into_the_whole_report(tmp_path: Path) -> None:
    first, second = _halves()
    whole = _write(tmp_path, "whole.json", sample_report())
    paths = [
        _write(tmp_path, "s2.json", _shard(second, 2, 2)),
        _write(tmp_path, "s1.json", _shard(first, 1, 2)),
    ]

    merged = run("merge", *paths, "--format", "json")
    alone = run("merge", whole, "--format", "json")

    got, expected = json.loads(merged.stdout), json.loads(alone.stdout)
    assert merged.returncode == alone.returncode == 3, merged.stderr
    assert got["findings"] == expected["findings"]
    assert got["context"] is None  # the merged report is no shard: as the unsharded run
    assert got["schema_version"] == "1.4"


def test_a_missing_shard_is_named_and_refused(tmp_path: Path) -> None:
    first, second = _halves()
    paths = [
        _write(tmp_path, "s1.json", _shard(first, 1, 3)),
        _write(tmp_path, "s3.json", _shard(second, 3, 3)),
    ]

    line = _one_error_line(run("merge", *paths))

    assert "the shards of 'prod' are not the complete set of 3" in line
    assert "shard 2/3 is missing" in line


def test_many_missing_shards_are_counted_not_all_listed(tmp_path: Path) -> None:
    first, _ = _halves()
    path = _write(tmp_path, "s1.json", _shard(first, 1, 1000))

    line = _one_error_line(run("merge", path))

    assert "shards 2/1000, 3/1000," in line and "11/1000 and 989 more are missing" in line
    assert "12/1000" not in line


def test_a_repeated_shard_is_named_and_refused(tmp_path: Path) -> None:
    first, second = _halves()
    one = _write(tmp_path, "s1.json", _shard(first, 1, 2))
    again = _write(tmp_path, "s1-again.json", _shard(second, 1, 2))

    line = _one_error_line(run("merge", one, again))

    assert f"shard 1/2 is given more than once ({one}, {again})" in line
    assert "shard 2/2 is missing" in line


def test_shards_of_different_counts_are_refused(tmp_path: Path) -> None:
    first, second = _halves()
    paths = [
        _write(tmp_path, "a.json", _shard(first, 1, 2)),
        _write(tmp_path, "b.json", _shard(second, 2, 3)),
    ]

    line = _one_error_line(run("merge", *paths))

    assert "is shard 2/3 of 'prod'" in line and "is shard 1/2" in line
    assert "share their N" in line


def test_shards_that_split_different_estates_are_refused(tmp_path: Path) -> None:
    first, second = _halves()
    later = estate_digest(["/subscriptions/S/a", "/subscriptions/S/b", "/subscriptions/S/c"])
    paths = [
        _write(tmp_path, "s1.json", _shard(first, 1, 2)),
        _write(tmp_path, "s2.json", _shard(second, 2, 2, servers_found=3, estate=later)),
    ]

    line = _one_error_line(run("merge", *paths))

    assert "the shards of 'prod' split different estates" in line
    assert f"shard 1/2 ({paths[0]}): 2 servers (estate {ESTATE[:12]})" in line
    assert f"shard 2/2 ({paths[1]}): 3 servers (estate {later[:12]})" in line
    assert "Resource Graph" in line and "rerun" in line


def test_an_unsharded_azure_report_does_not_join_shards(tmp_path: Path) -> None:
    first, second = _halves()
    paths = [
        _write(tmp_path, "s1.json", _shard(first, 1, 1)),
        _write(tmp_path, "whole.json", second),
    ]

    line = _one_error_line(run("merge", *paths))

    assert f"{paths[1]} is an unsharded Azure report of 'prod'" in line


def test_a_shard_without_an_estate_needs_its_collection_issue(tmp_path: Path) -> None:
    first, second = _halves()
    failed = _shard(second, 2, 2, servers_found=None, estate=None)
    paths = [_write(tmp_path, "s1.json", _shard(first, 1, 2)), _write(tmp_path, "s2.json", failed)]

    line = _one_error_line(run("merge", *paths))
    assert "records no estate and no collection issue" in line

    issue = sample_report().collection_issues
    paths[1] = _write(tmp_path, "s2.json", failed.model_copy(update={"collection_issues": issue}))
    merged = run("merge", *paths, "--format", "json")
    assert merged.returncode == 3, merged.stderr  # incomplete: the discovery failed


def test_a_shard_record_fits_the_shipped_schema_and_is_checked_on_reading(tmp_path: Path) -> None:
    import jsonschema

    from engram_audit.schemas import REPORT_SCHEMA, shipped

    first, _ = _halves()
    document = json.loads(json_report.render(_shard(first, 1, 2)))
    jsonschema.Draft202012Validator(shipped(REPORT_SCHEMA)).validate(document)
    assert document["context"]["shard"] == {
        "index": 1,
        "count": 2,
        "servers_found": 2,
        "estate": ESTATE,
    }

    document["context"]["shard"]["index"] = 3
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    result = run("merge", str(path))
    assert result.returncode == 2
    assert "shard index 3 is above the count 2" in result.stderr
    assert result.located()


def test_reports_of_1_3_without_shards_merge_as_before(tmp_path: Path) -> None:
    paths = []
    for name, half in zip(("a.json", "b.json"), _halves(), strict=True):
        document = json.loads(json_report.render(half))
        document["schema_version"] = "1.3"
        assert document["context"] is None
        path = tmp_path / name
        path.write_text(json.dumps(document), encoding="utf-8")
        paths.append(str(path))

    merged = run("merge", *paths, "--format", "json")
    whole = run("merge", _write(tmp_path, "w.json", sample_report()), "--format", "json")

    assert merged.returncode == whole.returncode == 3, merged.stderr
    assert json.loads(merged.stdout)["findings"] == json.loads(whole.stdout)["findings"]
    overlap = run("merge", paths[0], paths[0])
    assert overlap.returncode == 2 and "the shards overlap" in overlap.stderr
