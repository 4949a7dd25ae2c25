"""Golden files: every registered format renders the sample report exactly as reviewed.

A format added to the registry without a golden file fails here. After an intended change,
regenerate with ``UPDATE_GOLDEN=1 pytest tests/golden`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engram_audit.reporters import FORMATS
from tests.golden.sample import GOLDEN_DIR, sample_report

EXTENSIONS = {"sarif": "sarif", "junit": "xml", "markdown": "md", "json": "json", "console": "txt"}


def golden_path(name: str) -> Path:
    return GOLDEN_DIR / f"expected-{name}.{EXTENSIONS.get(name, 'txt')}"


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_format_matches_its_golden_file(name: str) -> None:
    rendered = FORMATS[name](sample_report())
    path = golden_path(name)
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes(rendered.encode("utf-8"))
    assert path.exists(), (
        f"format {name!r} is registered but has no golden file {path.name}: "
        "run UPDATE_GOLDEN=1 pytest tests/golden and review it"
    )
    assert rendered.encode("utf-8") == path.read_bytes()


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_format_is_byte_identical_for_the_same_report(name: str) -> None:
    first = FORMATS[name](sample_report())
    # A fresh parse of the same input: nothing may depend on object identity or the clock.
    second = FORMATS[name](sample_report())
    assert first.encode("utf-8") == second.encode("utf-8")


def test_every_golden_file_belongs_to_a_registered_format() -> None:
    expected = {golden_path(name).name for name in FORMATS}
    present = {path.name for path in GOLDEN_DIR.glob("expected-*")}
    assert present == expected
