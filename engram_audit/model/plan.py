"""What to collect, derived from a policy: collectors read this, never the policy's verdicts."""

from __future__ import annotations

from pydantic import Field

from engram_audit.model.base import FrozenModel


class SessionRetentionPlan(FrozenModel):
    table: str = "sessions"
    age_column: str = "created_at"
    tenant_column: str | None = None
    default_max_age_days: int = 90
    tenant_max_age_days: dict[str, int] = Field(default_factory=dict)


class ExpiredFactsPlan(FrozenModel):
    table: str = "facts"
    valid_to_column: str = "valid_to"


class DsnVariablesPlan(FrozenModel):
    """Environment variables holding application DSNs to inspect."""

    variables: tuple[str, ...] = ()


# What a check may ask a collector for beyond plain parts: parameterised queries and inputs.
CollectionRequest = SessionRetentionPlan | ExpiredFactsPlan | DsnVariablesPlan


class CollectionPlan(FrozenModel):
    environment: str
    parts: frozenset[str] | None = Field(
        default=None,
        description="Snapshot parts the enabled rules read (model.snapshot.PARTS); null: all",
    )
    database: str = "zep"
    schemas: tuple[str, ...] = ("public",)
    exclude_tables: tuple[str, ...] = ()
    session_retention: SessionRetentionPlan | None = None
    expired_facts: ExpiredFactsPlan | None = None
    dsn_variables: tuple[str, ...] = ()

    def wants(self, part: str) -> bool:
        return self.parts is None or part in self.parts
