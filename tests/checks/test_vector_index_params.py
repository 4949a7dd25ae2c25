"""pg.vector.index params: what a policy may write, and pgvector's lists guidance."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from engram_audit.checks.postgres.indexes import VectorIndexParams, _lists_guidance


def test_only_lists_can_be_auto() -> None:
    assert VectorIndexParams.model_validate({"ivfflat": {"lists": "auto"}}).ivfflat == {
        "lists": "auto"
    }
    with pytest.raises(ValidationError, match="only ivfflat lists can be auto"):
        VectorIndexParams.model_validate({"ivfflat": {"probes": "auto"}})
    with pytest.raises(ValidationError):
        VectorIndexParams.model_validate({"ivfflat": {"lists": "many"}})


def test_diskann_options_are_the_documented_five() -> None:
    params = VectorIndexParams.model_validate(
        {"diskann": {"max_neighbors": 48, "product_quantized": True}}
    )
    assert params.diskann == {"max_neighbors": 48, "product_quantized": True}
    with pytest.raises(ValidationError):
        VectorIndexParams.model_validate({"diskann": {"maxneighbors": 48}})


def test_diskann_is_not_allowed_unless_a_policy_says_so() -> None:
    assert VectorIndexParams().allowed_methods == ["hnsw", "ivfflat"]


@pytest.mark.parametrize(
    ("rows", "low", "high"),
    [
        (0, 1, 1),  # pgvector's IVFFLAT_MIN_LISTS
        (500, 1, 1),
        (1_000, 1, 1),
        (1_500, 1, 2),
        (118_000, 118, 118),
        (1_000_000, 1000, 1000),
        (1_000_001, 1000, 1001),
        (4_000_000, 2000, 2000),
        (2_000_000_000_000, 32768, 32768),  # pgvector's IVFFLAT_MAX_LISTS
    ],
)
def test_lists_guidance(rows: int, low: int, high: int) -> None:
    guidance = _lists_guidance(rows, 0)
    assert (guidance.low, guidance.high) == (low, high)
