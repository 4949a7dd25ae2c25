"""CI recipes in docs/ci and the pre-commit hook: valid YAML, wired as described, and every
``engram-audit`` command they run exists with the flags they pass."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from ruamel.yaml import YAML

from engram_audit.cli import cli
from engram_audit.gate.waivers import load_waivers
from tests.conftest import ROOT
from tests.test_cli import run

RECIPES = ROOT / "docs" / "ci"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
SHELL_OPERATORS = {"||", "&&", "|", ";", ">", ">>", "<", "&"}


def load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def scripts(node: Any) -> Iterator[str]:
    """Every shell snippet in a workflow: ``run``, ``script``, ``inlineScript``, ``entry``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"run", "script", "inlineScript", "entry"} and isinstance(value, str):
                yield value
            else:
                yield from scripts(value)
    elif isinstance(node, list):
        for item in node:
            yield from scripts(item)


def invocations(script: str) -> Iterator[list[str]]:
    """Argument lists of each ``engram-audit`` command in a shell snippet."""
    joined = re.sub(r"\\\n\s*", " ", script)
    for line in joined.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        for index, token in enumerate(tokens):
            at_command = index == 0 or tokens[index - 1] in SHELL_OPERATORS
            if token != "engram-audit" or not at_command:
                continue  # e.g. "pip install engram-audit"
            args: list[str] = []
            for arg in tokens[index + 1 :]:
                if arg in SHELL_OPERATORS:
                    break
                args.append(arg)
            yield args


def option_names(command: click.Command) -> set[str]:
    return {name for param in command.params for name in (*param.opts, *param.secondary_opts)}


def assert_command_exists(args: list[str]) -> None:
    assert args, "engram-audit with no subcommand"
    command = cli.commands.get(args[0])
    assert command is not None, f"no such command: engram-audit {args[0]}"
    known = option_names(command)
    for arg in args[1:]:
        if not arg.startswith("-"):
            continue
        name = arg.split("=", 1)[0]
        if not name.startswith("--") and len(name) > 2:
            name = name[:2]  # -ojson:path
        assert name in known, f"engram-audit {args[0]} has no option {name}"


def recipe_invocations(path: Path) -> list[list[str]]:
    return [args for script in scripts(load(path)) for args in invocations(script)]


@pytest.mark.parametrize("path", [*sorted(RECIPES.glob("*.yml")), HOOKS], ids=lambda p: p.name)
def test_recipe_is_valid_yaml_and_its_commands_exist(path: Path) -> None:
    found = recipe_invocations(path)
    assert found, f"{path.name} runs no engram-audit command"
    for args in found:
        assert_command_exists(args)


def test_command_checker_catches_a_wrong_flag() -> None:
    with pytest.raises(AssertionError, match="no option --fail-on-news"):
        assert_command_exists(["check", "--env", "prod", "--fail-on-news"])
    with pytest.raises(AssertionError, match="no such command"):
        assert_command_exists(["audit"])


def test_github_workflow_gates_uploads_sarif_and_keeps_nightly_snapshots() -> None:
    workflow = load(RECIPES / "github-actions.yml")
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as true
    assert triggers["schedule"]
    gate = workflow["jobs"]["release-gate"]
    assert gate["permissions"]["security-events"] == "write"
    upload = next(
        s
        for s in gate["steps"]
        if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif")
    )
    written = [a for args in recipe_invocations(RECIPES / "github-actions.yml") for a in args]
    assert f"sarif:{upload['with']['sarif_file']}" in written
    nightly = workflow["jobs"]["nightly-drift"]
    steps = nightly["steps"]
    artifact = next(
        s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact")
    )
    assert "snapshot.json" in artifact["with"]["path"]
    assert any(args[:1] == ["diff"] for s in steps for args in invocations(str(s.get("run", ""))))
    assert any(
        "--fail-on-new" in args for s in steps for args in invocations(str(s.get("run", "")))
    )


def test_azure_pipeline_publishes_junit_on_a_schedule() -> None:
    pipeline = load(RECIPES / "azure-pipelines.yml")
    assert pipeline["schedules"][0]["cron"]
    publish = next(s for s in pipeline["steps"] if s.get("task") == "PublishTestResults@2")
    assert publish["inputs"]["testResultsFormat"] == "JUnit"
    audit = next(
        args for args in recipe_invocations(RECIPES / "azure-pipelines.yml") if args[0] == "check"
    )
    junit_outputs = [a.split(":", 1)[1] for a in audit if a.startswith("junit:")]
    assert junit_outputs == [publish["inputs"]["testResultsFiles"]]


def test_example_waivers_file_is_valid() -> None:
    assert len(load_waivers(RECIPES / "waivers.example.yaml")) == 2


def test_pre_commit_hook_validates_policies(tmp_path: Path) -> None:
    (hook,) = load(HOOKS)
    assert re.search(hook["files"], "policies/prod.yaml")
    entry = shlex.split(hook["entry"])
    assert entry[0] == "engram-audit"
    good = run(*entry[1:], "policies/base.yaml", "policies/prod.yaml")
    assert good.returncode == 0, good.stderr
    broken = tmp_path / "prod.yaml"
    broken.write_text(
        "environment: prod\nrules:\n  - id: X\n    severity: urgent\n", encoding="utf-8"
    )
    bad = run(*entry[1:], str(broken))
    assert bad.returncode == 2
    assert f"{broken.as_posix()}:4:" in bad.stderr


def test_outputs_doc_commands_exist_and_severity_table_matches_the_code() -> None:
    from engram_audit.reporters.sarif import LEVEL, SECURITY_SEVERITY

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)
    found = [args for block in blocks for args in invocations(block)]
    assert len(found) >= 5
    for args in found:
        assert_command_exists(args)
    for severity, score in SECURITY_SEVERITY.items():
        assert re.search(
            rf"^  \| {severity.value} \| {re.escape(score)} \| \w+ \| {LEVEL[severity]} \|$",
            text,
            flags=re.MULTILINE,
        ), severity
