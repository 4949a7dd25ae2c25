"""The built wheel stands alone: installed into a fresh virtual environment and run in an empty
directory, it can init, validate, check a snapshot and run the demo; its policies are the
repository's policies/, byte for byte."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, SNAPSHOTS

pytestmark = pytest.mark.packaging


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return next(out.glob("engram_audit-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with the wheel installed (no editable link to this checkout); its
    dependencies are borrowed from the test environment instead of downloaded again."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    # A plain path entry: the test environment's own .pth files (its editable install of this
    # checkout among them) are not processed, so `engram_audit` comes from the wheel.
    (Path(purelib) / "borrowed-deps.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python


def _run(python: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "engram_audit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_wheel_carries_the_repository_policies_unchanged(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        prefix = "engram_audit/builtin/policies/"
        shipped = {
            name.removeprefix(prefix): archive.read(name)
            for name in names
            if name.startswith(prefix) and not name.endswith("/")
        }
        assert "engram_audit/demo/data/prod-drifted.json" in names
        assert "engram_audit/schemas/inventory.schema.json" in names
    policies = ROOT / "policies"
    repository = {
        p.relative_to(policies).as_posix(): p.read_bytes() for p in policies.rglob("*.yaml")
    }
    assert "presets/zep-legacy.yaml" in repository and "presets/zep-ce-v1.yaml" in repository
    assert shipped == repository


def test_installed_tool_works_in_an_empty_directory(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [str(installed), "-c", "import engram_audit; print(engram_audit.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(ROOT) not in where, "the wheel, not this checkout, must be imported"

    empty = tmp_path / "empty"
    empty.mkdir()
    validate = _run(installed, empty, "validate")
    assert validate.returncode == 0, validate.stderr
    assert "builtin-policies/prod.yaml" in validate.stdout

    snapshot = empty / "prod.json"
    shutil.copy(SNAPSHOTS / "prod-drifted.json", snapshot)
    check = _run(installed, empty, "check", "--env", "prod", "--snapshot", str(snapshot))
    assert check.returncode == 1, check.stderr
    assert (
        "builtin-policies"
        in _run(
            installed,
            empty,
            "check",
            "--env",
            "prod",
            "--snapshot",
            str(snapshot),
            "--format",
            "json",
        ).stdout
    )

    project = tmp_path / "project"
    init = _run(installed, tmp_path, "init", str(project))
    assert init.returncode == 0, init.stderr
    assert _run(installed, project, "validate").returncode == 0
    assert _run(installed, tmp_path, "init", str(project)).returncode == 2
    # The whole estate of the inventory init wrote, one snapshot per environment.
    snapshots = []
    for environment in ("dev", "prod", "staging", "uat"):
        shutil.copy(SNAPSHOTS / f"{environment}-drifted.json", project / f"{environment}.json")
        snapshots += ["--snapshot", f"{environment}.json"]
    estate = _run(installed, project, "check", "--all", *snapshots, "-o", "sarif:estate.sarif")
    assert estate.returncode == 1, estate.stderr
    assert "ESTATE: rules x environments" in estate.stdout
    assert (project / "estate.sarif").is_file()

    demo_dir = tmp_path / "demo"
    demo_dir.mkdir()
    demo = _run(installed, demo_dir, "demo")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "would exit 1" in demo.stdout
    assert (demo_dir / "engram-audit-reports" / "report.sarif").is_file()
