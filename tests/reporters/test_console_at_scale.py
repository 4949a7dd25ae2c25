"""The console report at fleet scale: grouped, counted, shortened, wrapped, coloured on demand."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from engram_audit.model import (
    Finding,
    Report,
    Severity,
    Source,
    Status,
    Summary,
)
from engram_audit.model.snapshot import ToolInfo
from engram_audit.reporters import console
from tests.conftest import SNAPSHOTS
from tests.support.cli import run_in_process as run

SERVERS = [
    f"/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/rg-{i % 7}/providers/"
    f"Microsoft.DBforPostgreSQL/flexibleServers/zep-prod-{i:03d}"
    for i in range(200)
]
_ESC = re.compile("\x1b\\[")


def _fleet_report() -> Report:
    """200 servers, ten failing rules each (same expected/actual), 18 passing rules each."""
    findings = []
    for server in SERVERS:
        for rule in range(10):
            findings.append(
                Finding(
                    rule=f"ZEP-FAIL-{rule:02d}",
                    check="azure.sku.tier",
                    title=f"Failing rule {rule}",
                    severity=Severity.HIGH,
                    status=Status.FAIL,
                    resource=server,
                    expected="GeneralPurpose",
                    actual="Burstable",
                    remediation="az postgres flexible-server update --ids {server_id} --tier GeneralPurpose",
                )
            )
        for rule in range(18):
            findings.append(
                Finding(
                    rule=f"ZEP-PASS-{rule:02d}",
                    check="azure.ha.mode",
                    title=f"Passing rule {rule}",
                    severity=Severity.MEDIUM,
                    status=Status.PASS,
                    resource=server,
                    expected="x",
                    actual="x",
                )
            )
    ordered = tuple(sorted(findings, key=lambda f: f.sort_key))
    return Report(
        tool=ToolInfo(name="engram-audit", version="test"),
        environment="prod",
        generated_at=datetime(2026, 11, 20, 6, 0, 0, 123456, tzinfo=UTC),
        sources=(Source.AZURE,),
        summary=Summary.of(ordered),
        findings=ordered,
    )


def test_two_hundred_servers_with_ten_failing_rules_fit_in_400_lines() -> None:
    text = console.render(_fleet_report(), width=100)
    lines = text.splitlines()
    assert len(lines) <= 400, len(lines)
    assert "ZEP-PASS-03  200 servers" in text
    assert "and 195 more" in text  # the first five resources are shown, the rest counted
    assert "rg-0/zep-prod-000" in text and "/subscriptions/" not in text
    assert "snapshot 2026-11-20T06:00:00Z" in lines[0]  # to the second
    assert lines[-1].startswith("5600 findings: 2000 failed (2000 high) · 0 errors")


def test_lines_wrap_at_the_width_with_a_hanging_indent_and_tokens_stay_whole() -> None:
    text = console.render(_fleet_report(), width=60)
    body = text.splitlines()[1:-2]  # header and summary lines are never wrapped
    for line in body:
        assert len(line) <= 60 or " " not in line.strip(), line
    continuation = next(line for line in body if line.startswith(" " * 21) and line.strip())
    assert not continuation[21].isspace()


def test_show_and_quiet_choose_what_is_listed(tmp_path: Path) -> None:
    drifted = str(SNAPSHOTS / "prod-drifted.json")
    brief = run("check", "--env", "prod", "--snapshot", drifted)
    full = run("check", "--env", "prod", "--snapshot", drifted, "--show", "all")
    assert "PASS (" in brief.stdout and "PASS (" in full.stdout
    passing = brief.stdout.split("PASS (", 1)[1]
    assert "expected" not in passing  # one line per rule
    assert "expected" in full.stdout.split("PASS (", 1)[1]
    only_fail = run("check", "--env", "prod", "--snapshot", drifted, "--show", "fail")
    assert "WAIVED" not in only_fail.stdout or "expected" in only_fail.stdout
    quiet = run("check", "--env", "prod", "--snapshot", drifted, "--quiet")
    assert quiet.returncode == 1
    total = json.loads(
        run("check", "--env", "prod", "--snapshot", drifted, "--format", "json").stdout
    )["summary"]["total"]
    assert quiet.stdout.splitlines()[0].startswith(f"{total} findings: ")
    assert len(quiet.stdout.splitlines()) <= 2
    bad = run("check", "--env", "prod", "--snapshot", drifted, "--show", "failing")
    assert bad.returncode == 2 and "unknown status 'failing'" in bad.stderr


def test_colour_follows_no_color_force_color_and_the_flag() -> None:
    drifted = str(SNAPSHOTS / "prod-drifted.json")
    args = ("check", "--env", "prod", "--snapshot", drifted)
    assert not _ESC.search(run(*args).stdout)  # not a terminal: plain
    forced = run(*args, env={"FORCE_COLOR": "1"}).stdout
    assert _ESC.search(forced)
    assert "\x1b[41;97;1mCRITICAL" in forced  # severities are coloured
    assert not _ESC.search(run(*args, env={"FORCE_COLOR": "1", "NO_COLOR": "1"}).stdout)
    assert not _ESC.search(run(*args, "--no-color", env={"FORCE_COLOR": "1"}).stdout)
    assert not _ESC.search(run("--no-color", *args, env={"FORCE_COLOR": "1"}).stdout)
    assert _ESC.search(run(*args, env={"FORCE_COLOR": "1"}).stdout)  # the flag does not stick


def test_columns_sets_the_width_even_without_a_terminal() -> None:
    drifted = str(SNAPSHOTS / "prod-drifted.json")
    narrow = run("check", "--env", "prod", "--snapshot", drifted, env={"COLUMNS": "70"})
    body = narrow.stdout.splitlines()[1:-3]
    assert all(len(line) <= 70 or " " not in line.strip() for line in body)
    wide = run("check", "--env", "prod", "--snapshot", drifted)
    assert max(len(line) for line in wide.stdout.splitlines()) > 70


def test_json_keeps_every_resource_in_full() -> None:
    report = json.loads(
        run(
            "check",
            "--env",
            "prod",
            "--snapshot",
            str(SNAPSHOTS / "prod-drifted.json"),
            "--format",
            "json",
        ).stdout
    )
    assert any(f["resource"].startswith("/subscriptions/") for f in report["findings"])
