"""The shipped JSON Schemas are the ones the code generates, and they accept what they should."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from engram_audit.schemas import shipped
from engram_audit.schemas.generate import GENERATORS, render


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_shipped_schema_matches_generated(name: str) -> None:
    generated = GENERATORS[name]()
    Draft202012Validator.check_schema(generated)
    assert shipped(name) == generated, (
        f"run `python -m engram_audit.schemas` to refresh {name}: {render(generated)[:0]}"
    )
