"""The CI gate end to end: one run writes every format, valid and byte-identical; waivers and
baselines through the real command line, with dates chosen by the test."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import xmlschema

from tests.golden.sample import REFERENCE_SCHEMAS
from tests.reporters.test_sarif_output import multitool, multitool_findings, schema_errors
from tests.test_cli import run

DRIFTED = "fixtures/snapshots/prod-drifted.json"
PROD_SERVER = (
    "/subscriptions/6f2a1c3e-8b4d-4e2f-9a7c-1d2e3f4a5b6c/resourceGroups/engram-rg/providers/"
    "Microsoft.DBforPostgreSQL/flexibleServers/zep-prod-db"
)


def check(*args: str) -> tuple[int, str, str]:
    result = run("check", "--env", "prod", "--snapshot", DRIFTED, *args)
    return result.returncode, result.stdout, result.stderr


def write_all(directory: Path, *args: str) -> tuple[int, dict[str, bytes]]:
    directory.mkdir(parents=True, exist_ok=True)
    names = {"sarif": "r.sarif", "junit": "r.xml", "markdown": "r.md", "json": "r.json"}
    outputs = [f"-o{fmt}:{directory / name}" for fmt, name in names.items()]
    code, _, stderr = check(*outputs, *args)
    assert "Traceback" not in stderr
    return code, {fmt: (directory / name).read_bytes() for fmt, name in names.items()}


@pytest.fixture(scope="module")
def drifted_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, bytes], Path]:
    directory = tmp_path_factory.mktemp("gate")
    code, files = write_all(directory / "first")
    return code, files, directory


def test_one_run_writes_every_format_and_gates(
    drifted_run: tuple[int, dict[str, bytes], Path],
) -> None:
    code, files, _ = drifted_run
    assert code == 1
    assert schema_errors(json.loads(files["sarif"])) == []
    xmlschema.XMLSchema(str(REFERENCE_SCHEMAS / "jenkins-xunit-junit-10.xsd")).validate(
        files["junit"].decode("utf-8")
    )
    assert files["markdown"].startswith(b"## engram-audit: prod: FAIL")
    assert json.loads(files["json"])["summary"]["by_status"]["fail"] > 0


def test_two_runs_give_identical_files(drifted_run: tuple[int, dict[str, bytes], Path]) -> None:
    _, first, directory = drifted_run
    _, second = write_all(directory / "second")
    assert first == second


def test_drifted_sarif_passes_the_multitool_with_github_rules(
    drifted_run: tuple[int, dict[str, bytes], Path], tmp_path: Path
) -> None:
    tool = multitool()
    if tool is None:
        pytest.skip(
            "Microsoft SARIF multitool not installed (see tests/reporters/test_sarif_output.py)"
        )
    path = tmp_path / "prod.sarif"
    path.write_bytes(drifted_run[1]["sarif"])
    findings = multitool_findings(tool, path, tmp_path)
    assert [f for f in findings if f["level"] == "error"] == []


def waivers_file(tmp_path: Path, expires: str, rule: str = "ZEP-AZ-GEO-BACKUP") -> Path:
    path = tmp_path / "waivers.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            waivers:
              - rule: {rule}
                resource: "/subscriptions/*/flexibleServers/zep-prod-db"
                reason: geo backup is fixed at creation; rebuild planned
                owner: platform@example.com
                url: https://tracker.example.com/SEC-7
                expires: {expires}
            """
        ),
        encoding="utf-8",
    )
    return path


def finding(report: dict[str, object], rule: str) -> dict[str, object]:
    findings = report["findings"]
    assert isinstance(findings, list)
    match: dict[str, object] = next(f for f in findings if f["rule"] == rule)
    return match


def test_waiver_applies_through_its_last_day_then_lapses(tmp_path: Path) -> None:
    path = waivers_file(tmp_path, "2026-12-31")
    out = tmp_path / "r.json"
    code, _, stderr = check("--waivers", str(path), "--today", "2026-12-31", f"-ojson:{out}")
    assert code == 1  # other failures remain
    assert finding(json.loads(out.read_text()), "ZEP-AZ-GEO-BACKUP")["status"] == "waived"
    code, _, stderr = check("--waivers", str(path), "--today", "2027-01-01", f"-ojson:{out}")
    geo = finding(json.loads(out.read_text()), "ZEP-AZ-GEO-BACKUP")
    assert geo["status"] == "fail"
    assert str(geo["waiver"]).startswith("waiver expired on 2026-12-31")
    assert "waiver expired on 2026-12-31" in stderr


def test_warn_expiring_and_stale_waivers_are_reported(tmp_path: Path) -> None:
    path = waivers_file(tmp_path, "2026-12-01")
    _, _, stderr = check("--waivers", str(path), "--today", "2026-11-28", "--warn-expiring", "7")
    assert "waiver expiring in 3 day(s) on 2026-12-01" in stderr
    stale = waivers_file(tmp_path, "2027-01-01", rule="ZEP-AZ-SKU-TIER")  # passes in the snapshot
    _, _, stderr = check("--waivers", str(stale), "--today", "2026-11-28")
    assert "stale waiver" in stderr


def test_malformed_waiver_date_fails_closed_with_exit_2(tmp_path: Path) -> None:
    path = waivers_file(tmp_path, "2026-02-30")
    code, _, stderr = check("--waivers", str(path))
    assert code == 2
    assert f"{path}:7:14: [waivers[0].expires] invalid date '2026-02-30'" in stderr


def test_baseline_marks_findings_and_fail_on_new_gates_only_new(tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    assert check(f"-ojson:{baseline}")[0] == 1
    sarif_path = tmp_path / "r.sarif"
    code, _, stderr = check("--baseline", str(baseline), "--fail-on-new", f"-osarif:{sarif_path}")
    assert code == 0, stderr
    results = json.loads(sarif_path.read_text())["runs"][0]["results"]
    assert results
    assert {r["baselineState"] for r in results} == {"unchanged"}
    assert check("--baseline", str(baseline))[0] == 1


def test_a_new_failure_since_the_baseline_fails_the_gate(tmp_path: Path) -> None:
    # Baseline taken while the geo-backup failure was waived: once the waiver lapses it is new.
    waivers = waivers_file(tmp_path, "2026-12-31")
    baseline = tmp_path / "baseline.json"
    check("--waivers", str(waivers), "--today", "2026-12-01", f"-ojson:{baseline}")
    out = tmp_path / "r.json"
    code, _, _ = check(
        "--waivers",
        str(waivers),
        "--today",
        "2027-01-01",
        "--baseline",
        str(baseline),
        "--fail-on-new",
        f"-ojson:{out}",
    )
    assert code == 1
    assert finding(json.loads(out.read_text()), "ZEP-AZ-GEO-BACKUP")["baseline_state"] == "new"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--fail-on-new",), "--fail-on-new needs --baseline"),
        (("--warn-expiring", "3"), "--warn-expiring needs --waivers"),
        (("--today", "tomorrow"), "'tomorrow' does not match the format"),
        (("--baseline", "fixtures/snapshots/prod-drifted.json"), "not an engram-audit JSON report"),
    ],
)
def test_gate_flag_misuse_exits_2(args: tuple[str, ...], message: str) -> None:
    code, _, stderr = check(*args)
    assert code == 2
    assert message in stderr
