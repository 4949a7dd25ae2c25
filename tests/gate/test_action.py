"""action.yml, the composite GitHub Action: its bash steps run as a runner would run them, in an
empty workspace, against the bundled snapshots (``args: --snapshot .../{env}-drifted.json``).

The setup-python step is another action and cannot run here: its stand-in points at this
interpreter. The install step is stood in by a wrapper that records each command line and runs
this checkout's engram-audit, except in the packaging test, which runs it for real
(``pip install`` of the action's own checkout into a fresh virtual environment).
"""

from __future__ import annotations

import json
import shlex
import site
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import ROOT, SNAPSHOTS
from tests.support.steps import Run, StandIn, StepRunner, clean_environment

ACTION = ROOT / "action.yml"
SETUP_PYTHON = "Set up Python for engram-audit"
INSTALL = "Install engram-audit"
DRIFTED = f"--snapshot {SNAPSHOTS}/{{env}}-drifted.json"
COMPLIANT = f"--snapshot {SNAPSHOTS}/{{env}}-compliant.json"


def action() -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(ACTION.read_text(encoding="utf-8"))
    return data


def recording_engram_audit(directory: Path) -> tuple[Path, Path]:
    """An engram-audit that appends its arguments to a log, then runs this checkout's."""
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "calls.log"
    program = directory / "engram-audit"
    real = Path(sys.executable).parent / "engram-audit"
    program.write_text(
        f'#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> {shlex.quote(str(log))}\n'
        f'exec {shlex.quote(str(real))} "$@"\n',
        encoding="utf-8",
    )
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program, log


class ActionRun:
    def __init__(self, run: Run, outputs: dict[str, str], workspace: Path, calls: list[str]):
        self.run, self.outputs, self.workspace, self.calls = run, outputs, workspace, calls

    def sarif(self, environment: str) -> dict[str, Any]:
        path = self.workspace / self.outputs["sarif-dir"] / f"{environment}.sarif"
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data


def run_action(
    tmp_path: Path,
    inputs: dict[str, str],
    *,
    real_install: bool = False,
    env: dict[str, str] | None = None,
) -> ActionRun:
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    program, log = recording_engram_audit(tmp_path / "wrapper")
    data = action()
    given = {name: str(spec.get("default", "")) for name, spec in data["inputs"].items()}
    unknown = set(inputs) - set(given)
    assert not unknown, f"action.yml has no input {unknown}"
    given.update(inputs)
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    stand_ins = {SETUP_PYTHON: StandIn(outputs={"python-path": sys.executable})}
    if not real_install:
        stand_ins[INSTALL] = StandIn(outputs={"engram-audit": str(program)})
    runner = StepRunner(
        workdir=workspace,
        contexts={
            "inputs": given,
            "github": {"action_path": str(ROOT), "workspace": str(workspace)},
            "runner": {"temp": str(runner_temp)},
        },
        base_env={**clean_environment(tmp_path / "no-bin"), **(env or {})},
        stand_ins=stand_ins,
    )
    run = runner.run(data["runs"]["steps"])
    outputs = {name: runner.substitute(spec["value"]) for name, spec in data["outputs"].items()}
    calls = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return ActionRun(run, outputs, workspace, calls)


def test_each_environment_gets_its_sarif_and_the_last_step_fails(tmp_path: Path) -> None:
    result = run_action(tmp_path, {"environments": "uat, prod", "args": DRIFTED})
    run = result.run
    assert run.stood_in == [SETUP_PYTHON, INSTALL]
    assert run.step("Audit each environment").returncode == 0, run.log()
    assert result.outputs["exit-code"] == "1"
    assert result.outputs["exit-codes"] == "uat=1 prod=1"
    assert result.outputs["environments"] == "uat prod"
    assert result.outputs["sarif-dir"] == "engram-audit-sarif"
    assert (
        result.outputs["sarif-files"]
        == "engram-audit-sarif/uat.sarif engram-audit-sarif/prod.sarif"
    )
    for environment in ("uat", "prod"):
        run_ = result.sarif(environment)["runs"][0]
        assert run_["automationDetails"]["id"] == f"engram-audit/{environment}/"
        assert run_["results"]
        for suffix in ("md", "json", "xml"):
            assert (result.workspace / "engram-audit-reports" / f"{environment}.{suffix}").is_file()
    assert (
        "## engram-audit: uat: FAIL" in run.summary and "## engram-audit: prod: FAIL" in run.summary
    )
    gate = run.step("Gate on the audit")
    assert gate.ran and gate.returncode == 1
    # waivers.yaml absent, no policy dir, no inventory: none of them is passed
    for call in result.calls:
        assert "--waivers" not in call and "--policy-dir" not in call and "--config" not in call


def test_all_audits_every_environment_of_the_policies(tmp_path: Path) -> None:
    result = run_action(tmp_path, {"environments": "all", "args": COMPLIANT})
    assert not result.run.failed, result.run.log()
    assert result.calls[0] == "environments"
    assert result.outputs["environments"] == "dev prod staging uat"
    assert result.outputs["exit-code"] == "0"
    assert len(result.outputs["sarif-files"].split()) == 4
    assert result.sarif("staging")["runs"][0]["results"] == []


def test_inputs_reach_the_command_line(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    (workspace / "audit").mkdir(parents=True)
    (workspace / "audit" / "waivers.yaml").write_text(
        "apiVersion: engram-audit/v1\nwaivers: []\n", encoding="utf-8"
    )
    policy_dir = workspace / "our-policies"
    policy_dir.mkdir()
    for name in ("base.yaml", "uat.yaml", "prod.yaml"):
        (policy_dir / name).write_bytes((ROOT / "policies" / name).read_bytes())
    result = run_action(
        tmp_path,
        {
            "environments": "all",
            "policy-dir": "our-policies",
            "waivers": "audit/waivers.yaml",
            "fail-on": "critical",
            "sarif-dir": "out/sarif",
            "reports-dir": "out/reports",
            "args": f"{DRIFTED} --sources azure",
            "gate": "false",
            "job-summary": "false",
        },
    )
    assert result.calls[0] == "environments --policy-dir our-policies"
    assert result.calls[1:] == [
        f"check --env {env} --fail-on critical --policy-dir our-policies "
        f"--waivers audit/waivers.yaml --snapshot {SNAPSHOTS}/{env}-drifted.json "
        f"--sources azure -o sarif:out/sarif/{env}.sarif -o markdown:out/reports/{env}.md "
        f"-o json:out/reports/{env}.json -o junit:out/reports/{env}.xml"
        for env in ("prod", "uat")
    ]
    assert result.outputs["exit-code"] == "1"
    assert result.run.not_run == ["Job summary", "Gate on the audit"]
    assert not result.run.failed
    assert result.run.summary == ""


def test_an_inventory_is_passed_as_config_only_when_given(tmp_path: Path) -> None:
    result = run_action(
        tmp_path, {"environments": "prod", "config": "engram-audit.yaml", "args": DRIFTED}
    )
    (call,) = result.calls
    assert " --config engram-audit.yaml " in f" {call} "


def test_the_worst_exit_code_wins_and_bad_names_are_refused(tmp_path: Path) -> None:
    result = run_action(tmp_path, {"environments": "prod nosuch ../etc", "args": DRIFTED})
    assert result.outputs["exit-codes"] == "prod=1 nosuch=2 ../etc=2"
    assert result.outputs["exit-code"] == "2"
    assert result.outputs["sarif-files"] == "engram-audit-sarif/prod.sarif"
    assert "::error::engram-audit: not an environment name: ../etc" in (
        result.run.step("Audit each environment").stdout
    )
    assert result.run.step("Gate on the audit").returncode == 2


def test_no_environment_is_invalid_input(tmp_path: Path) -> None:
    result = run_action(tmp_path, {"environments": " , "})
    assert result.outputs["exit-code"] == "2"
    assert result.outputs["sarif-files"] == ""
    assert result.run.not_run == ["Job summary"]
    assert result.run.step("Gate on the audit").returncode == 2


@pytest.mark.packaging
def test_the_action_installs_its_own_checkout(tmp_path: Path) -> None:
    """The install step for real: a venv under runner.temp and `pip install <action_path>`.
    Dependencies are borrowed from the test environment (PIP_NO_DEPS and a .pth file) instead of
    downloaded again; building the wheel uses the package index, as on a runner."""
    venv = tmp_path / "runner-temp" / "engram-audit-venv"
    venv.parent.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    (Path(purelib) / "borrowed-deps.pth").write_text("\n".join(sorted(ours)) + "\n")

    result = run_action(
        tmp_path,
        {"environments": "prod", "args": DRIFTED},
        real_install=True,
        env={"PIP_NO_DEPS": "1"},
    )
    install = result.run.step(INSTALL)
    assert install.ran and install.returncode == 0, result.run.log()
    assert install.outputs["engram-audit"] == str(venv / "bin" / "engram-audit")
    assert "engram-audit, version 0.1.0" in install.stdout
    assert result.outputs["exit-code"] == "1"
    assert result.sarif("prod")["runs"][0]["results"]
    where = subprocess.run(
        [str(python), "-c", "import engram_audit; print(engram_audit.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert str(ROOT) not in where, "the installed wheel, not this checkout, must run"
