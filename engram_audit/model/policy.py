"""A resolved policy: what one environment must look like, rule by rule."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from engram_audit.model.base import FrozenModel, Severity


class SourceLocation(FrozenModel):
    """Where a rule was declared; reports anchor findings here (SARIF needs a file and line)."""

    path: str
    line: int = Field(ge=1)
    column: int = Field(default=1, ge=1)


class ControlRef(FrozenModel):
    """A control of a framework that a rule implements (``azure-policy:<definition id>``,
    ``mcsb:LT-3``, ``cis-azure-3.0.0:5.2.2``, ``prowler:<check id>``), with its name."""

    framework: str
    id: str
    name: str = ""

    @property
    def key(self) -> str:
        return f"{self.framework}:{self.id}"


class Rule(FrozenModel):
    id: str
    check: str
    severity: Severity
    title: str
    rationale: str = ""
    remediation: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    remediation_params: dict[str, str] = Field(
        default_factory=dict,
        description="Values only a person can supply to the rule's fix (an action group id, an "
        "Entra group's object id), by fact name (checks.facts.PERSON_FACTS)",
    )
    enabled: bool = True
    location: SourceLocation | None = None
    controls: tuple[ControlRef, ...] = Field(
        default=(), description="Framework controls this rule implements in this environment"
    )


class PostgresScope(FrozenModel):
    """The database and objects the Postgres collector looks at."""

    database: str = "zep"
    schemas: tuple[str, ...] = ("public",)
    exclude_tables: tuple[str, ...] = ()


class Policy(FrozenModel):
    environment: str
    description: str = ""
    scope: PostgresScope = PostgresScope()
    rules: tuple[Rule, ...] = ()
    files: tuple[str, ...] = Field(
        default=(), description="Files merged into this policy, base first"
    )

    def enabled_rules(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.enabled)
