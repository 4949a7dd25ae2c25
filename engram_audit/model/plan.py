"""What to collect, derived from a policy: collectors read this, never the policy's verdicts."""

from __future__ import annotations

from pydantic import Field

from engram_audit.model.base import FrozenModel

# Zep's soft-delete column: bun's ``soft_delete`` tag on ``DeletedAt`` in every model that has
# one (getzep/zep pkg/store/postgres/schema.go@v0.27.2 L42, L66, L91, L115, L140, L188;
# src/store/schema_common.go@v1.0.2 L50, L75, L103).
ZEP_DELETED_COLUMN = "deleted_at"


class SessionRetentionPlan(FrozenModel):
    """Count a table's rows past their retention age (per tenant), live rows only."""

    table: str = "sessions"
    age_column: str = "created_at"
    tenant_column: str | None = None
    default_max_age_days: int = 90
    tenant_max_age_days: dict[str, int] = Field(default_factory=dict)
    deleted_column: str | None = Field(
        default=ZEP_DELETED_COLUMN,
        description="Rows where this column is set are soft-deleted, not counted; null: count "
        "every row",
    )
    deleted_column_required: bool = Field(
        default=False,
        description="False: the column is left out when the table has none (the default "
        "deleted_at); true: the policy named it, so a missing column is an issue",
    )


class SoftDeletedPlan(FrozenModel):
    """Count a table's soft-deleted rows, and those deleted longer ago than ``max_age_hours``."""

    table: str
    deleted_column: str = ZEP_DELETED_COLUMN
    max_age_hours: float = 24


class ExpiredFactsPlan(FrozenModel):
    table: str = "facts"
    valid_to_column: str = "valid_to"


class DsnVariablesPlan(FrozenModel):
    """Environment variables holding application DSNs to inspect."""

    variables: tuple[str, ...] = ()


# What a check may ask a collector for beyond plain parts: parameterised queries and inputs.
CollectionRequest = SessionRetentionPlan | SoftDeletedPlan | ExpiredFactsPlan | DsnVariablesPlan


class CollectionPlan(FrozenModel):
    environment: str
    parts: frozenset[str] | None = Field(
        default=None,
        description="Snapshot parts the enabled rules read (model.snapshot.PARTS); null: all",
    )
    database: str = "zep"
    schemas: tuple[str, ...] = ("public",)
    exclude_tables: tuple[str, ...] = ()
    retention: tuple[SessionRetentionPlan, ...] = Field(
        default=(), description="Retention counts, one per distinct table and criteria"
    )
    soft_deleted: tuple[SoftDeletedPlan, ...] = ()
    expired_facts: ExpiredFactsPlan | None = None
    dsn_variables: tuple[str, ...] = ()

    def wants(self, part: str) -> bool:
        return self.parts is None or part in self.parts
