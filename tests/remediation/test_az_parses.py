"""Every az command the catalogue can emit is accepted by the real Azure CLI's argument parser.

Cost: the test needs ``azure-cli`` (2.91.0, about 95 s to install on this machine into its own
virtual environment, which is cached: ``az_python`` in conftest.py). All commands are parsed in
one process (``get_default_cli().invoke``, ~2 s): without a login a well-formed command fails
only at the login step (exit 1, "az login"); a parse error exits 2 ("unrecognized arguments",
"the following arguments are required", invalid choice). Commands a fix shows to a person
(between backticks in its text) are parsed too.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from engram_audit.checks import get_check
from engram_audit.checks.facts import FACTS, PERSON_FACTS, FactValue, placeholders
from engram_audit.model import Report
from engram_audit.policy.loader import load_policy
from engram_audit.remediation import render, target_of
from engram_audit.remediation.scripts import build
from tests.support.cli import run_in_process

pytestmark = pytest.mark.azcli

ROOT = Path(__file__).parents[2]
SERVER = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-1"
    "/providers/Microsoft.DBforPostgreSQL/flexibleServers/db-1"
)
SAMPLE: dict[str, FactValue] = {
    "server_id": SERVER,
    "subscription": "00000000-0000-0000-0000-000000000000",
    "resource_group": "rg-1",
    "server": "db-1",
    "parameter": "shared_preload_libraries",
    "current": "pg_cron",
    "value": "pg_cron,pg_stat_statements",
    "restart": "required",
    "firewall_rule": ("AllowAll", "rule two"),
    "alert": ("connections", "storage"),
    "condition": ("avg active_connections > 1374", "avg storage_percent > 90"),
}
_VARIABLE = re.compile(r'"\$\{[A-Z_]+:\?[^}]*\}"')


def az_commands(text: str) -> list[list[str]]:
    """The az invocations in a rendered fix or script: variables given a value, comments and
    shell control words dropped."""
    commands = []
    for line in text.splitlines():
        line = _VARIABLE.sub("/subscriptions/0/resourceGroups/g/providers/x/y/z", line)
        line = re.sub(r">/dev/null 2>&1; then$", "", line.strip()).removeprefix("if ")
        for part in line.split("&&"):
            words = shlex.split(part, comments=True)
            if words and words[0] == "az":
                commands.append(words[1:])
    return commands


def catalogue_commands() -> list[list[str]]:
    """Every policy rule's az template rendered with sample facts."""
    commands = []
    for path in sorted((ROOT / "policies").glob("*.yaml")):
        if "environment:" not in path.read_text(encoding="utf-8"):
            continue
        for rule in load_policy(path).rules:
            check = get_check(rule.check)
            assert check is not None
            template = rule.remediation or check.remediation
            if target_of(template) != "shell":
                continue
            facts = {k: v for k, v in SAMPLE.items() if k in check.facts}
            assert set(placeholders(template)) <= check.facts | PERSON_FACTS | FACTS.keys()
            commands.extend(az_commands(render(template, facts, rule.params)))
    return commands


def shown_commands(text: str) -> list[list[str]]:
    """The az commands a prose fix shows between backticks (for a person to run)."""
    return [shlex.split(span)[1:] for span in re.findall(r"`(az [^`]+)`", text)]


def script_commands(tmp_path: Path) -> list[list[str]]:
    commands = []
    for environment in ("dev", "staging", "uat", "prod"):
        out = tmp_path / f"{environment}.json"
        snapshot = ROOT / "fixtures" / "snapshots" / f"{environment}-drifted.json"
        run_in_process("check", "--snapshot", str(snapshot), "-o", f"json:{out}")
        report = Report.model_validate_json(out.read_text(encoding="utf-8"))
        scripts = build(report)
        if "azure.sh" in scripts:
            commands.extend(az_commands(scripts["azure.sh"]))
        for finding in report.findings:
            if target_of(finding.remediation) == "text":
                commands.extend(shown_commands(finding.remediation))
    return commands


def test_every_az_command_parses(az_python: str, tmp_path: Path) -> None:
    commands = catalogue_commands() + script_commands(tmp_path)
    assert len(commands) > 20
    unique = [list(c) for c in dict.fromkeys(tuple(c) for c in commands)]
    # Controls, parsed in the same process: the texts the policies carried before, which the
    # parser rejects (an argument renamed in azure-cli, a wrong flag), prove rejections show.
    controls = [
        [
            "postgres",
            "flexible-server",
            "update",
            "--ids",
            SERVER,
            "--high-availability",
            "Disabled",
        ],
        [
            "postgres",
            "flexible-server",
            "firewall-rule",
            "delete",
            "-g",
            "g",
            "--name",
            "s",
            "--rule-name",
            "r",
        ],
    ]
    result = subprocess.run(
        [az_python, str(Path(__file__).with_name("az_parse.py"))],
        input=json.dumps(controls + unique),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env={
            **os.environ,
            "AZURE_CONFIG_DIR": str(tmp_path / "az"),
            "AZURE_CORE_COLLECT_TELEMETRY": "0",
        },
    )
    outcomes = json.loads(result.stdout)
    assert [code for code, _ in outcomes[: len(controls)]] == [2, 2], outcomes[: len(controls)]
    # Exit 1 is the login step (logged once per process); 2 is the argument parser's refusal.
    rejected = [
        (shlex.join(["az", *args]), err)
        for args, (code, err) in zip(unique, outcomes[len(controls) :], strict=True)
        if code != 1
    ]
    assert not rejected, "\n".join(f"{cmd}\n  -> {err}" for cmd, err in rejected)
