"""Shared building blocks of the model: frozen pydantic base and the ordered enums."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict


class FrozenModel(BaseModel):
    """Immutable, strict-keyed model: unknown keys are errors, never silently dropped, and a
    float is a number: NaN and Infinity (also spelled as strings, "nan") are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_ORDER.index(self)

    # Ordered by rank, not alphabetically: every comparison is defined here because str's own
    # operators would otherwise compare the names ("high" < "low").
    def __lt__(self, other: object) -> bool:
        return self.rank < _rank(other)

    def __le__(self, other: object) -> bool:
        return self.rank <= _rank(other)

    def __gt__(self, other: object) -> bool:
        return self.rank > _rank(other)

    def __ge__(self, other: object) -> bool:
        return self.rank >= _rank(other)


def _rank(other: object) -> int:
    if not isinstance(other, Severity):
        raise TypeError(f"cannot compare Severity with {type(other).__name__}")
    return other.rank


_SEVERITY_ORDER = (Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL)
SEVERITIES_ASCENDING: tuple[Severity, ...] = _SEVERITY_ORDER


class Status(StrEnum):
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


class Source(StrEnum):
    """Where a piece of state comes from; a run can select any subset."""

    AZURE = "azure"
    POSTGRES = "postgres"
    DSN = "dsn"


ALL_SOURCES: frozenset[Source] = frozenset(Source)


def _assume_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_assume_utc)]
"""A timestamp that always compares: ARM and PostgreSQL send UTC, sometimes without an offset."""


def read_schema_version(kind: str, value: Any, current: str) -> str:
    """A document's ``MAJOR.MINOR`` schema version, read leniently within this major.

    Adding fields bumps the minor version; a reader accepts every minor version of its major
    (the first format wrote the bare integer ``1``, read as ``1.0``) and refuses another
    major with a message that says which versions it reads.
    """
    text = str(value).strip()
    major, _, minor = text.partition(".")
    current_major = current.split(".", 1)[0]
    if major != current_major or not major.isdigit() or not (minor or "0").isdigit():
        raise ValueError(
            f"{kind} schema version {text!r} cannot be read by this engram-audit, which reads "
            f"{current_major}.x (current {current}); "
            + (
                "upgrade engram-audit"
                if major.isdigit() and int(major) > int(current_major)
                else "re-create it with this version"
            )
        )
    return f"{major}.{minor or '0'}"
