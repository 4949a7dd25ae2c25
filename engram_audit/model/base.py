"""Shared building blocks of the model: frozen pydantic base and the ordered enums."""

from __future__ import annotations

from enum import Enum
from functools import total_ordering

from pydantic import BaseModel, ConfigDict


class FrozenModel(BaseModel):
    """Immutable, strict-keyed model: unknown keys are errors, never silently dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@total_ordering
class Severity(str, Enum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_ORDER.index(self)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank


_SEVERITY_ORDER = (Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)
SEVERITIES_ASCENDING: tuple[Severity, ...] = _SEVERITY_ORDER


class Status(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"
    WAIVED = "waived"


# The order reports list statuses in: what needs attention first.
STATUS_ORDER: tuple[Status, ...] = (
    Status.FAIL,
    Status.ERROR,
    Status.WAIVED,
    Status.SKIP,
    Status.PASS,
)


class Source(str, Enum):
    """Where a piece of state comes from; a run can select any subset."""

    AZURE = "azure"
    POSTGRES = "postgres"
    DSN = "dsn"


ALL_SOURCES: frozenset[Source] = frozenset(Source)
