"""The inventory (``engram-audit.yaml``): an estate's environments and what to audit in each.

Every target is optional: a freshly written inventory (``engram-audit init``) validates before
anyone fills it in, and a run with an unfilled target says which target is missing. Flags given
on the command line override the inventory for that run.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from engram_audit.model.base import FrozenModel, Severity

INVENTORY_API_VERSION = "engram-audit/v1"
INVENTORY_FILE = "engram-audit.yaml"
ENVIRONMENT_PATTERN = "^[a-z][a-z0-9_-]*$"


class AzureTarget(FrozenModel):
    subscriptions: tuple[str, ...] = Field(default=(), description="Subscription ids to search")
    management_group: str | None = Field(default=None, description="Management group id")
    resource_group: str | None = None
    servers: tuple[str, ...] = Field(default=(), description="Flexible server names")
    tag: dict[str, str] = Field(
        default_factory=dict, description="Discover servers by tag, e.g. {environment: prod}"
    )
    cloud: Literal["AzureCloud", "AzureChinaCloud", "AzureUSGovernment"] | None = None


class PostgresTarget(FrozenModel):
    dsn_env: str | None = Field(
        default=None, description="Environment variable holding the auditor's DSN"
    )
    entra_auth: bool = Field(default=False, description="Sign in with a Microsoft Entra token")


class EnvironmentEntry(FrozenModel):
    policy: str | None = Field(
        default=None, description="Policy file, relative to the inventory [<policy-dir>/<env>.yaml]"
    )
    azure: AzureTarget | None = None
    postgres: PostgresTarget | None = None
    dsn_env: tuple[str, ...] | None = Field(
        default=None,
        description="Application DSN variables to check; overrides dsn.sslmode's variables",
    )
    waivers: str | None = Field(default=None, description="Waivers file for this environment")
    baseline: str | None = Field(default=None, description="Baseline JSON report")
    fail_on: Severity | None = Field(default=None, description="--fail-on for this environment")
    allow_empty: bool | None = Field(
        default=None, description="Accept a scope that matches no server on purpose"
    )


class Inventory(FrozenModel):
    api_version: Literal["engram-audit/v1"] = Field(alias="apiVersion")
    environments: dict[str, EnvironmentEntry] = Field(default_factory=dict)
