"""Which environments a run covers and how each is audited: flags, inventory, snapshots.

One environment with flags only behaves as it always has. With an inventory
(``engram-audit.yaml``, or ``--config``), ``--all`` or repeated ``--env`` audit several
environments in one run; flags given on the command line override the inventory for every
environment of the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engram_audit.cli.azure_options import azure_request_from_options
from engram_audit.cli.common import resolve_policy
from engram_audit.cli.gate_options import GateOptions
from engram_audit.cli.postgres_options import postgres_request_from_options
from engram_audit.collectors.iac.request import IacRequest
from engram_audit.collectors.run import LiveTargets
from engram_audit.errors import UsageError
from engram_audit.model import Policy, Severity, Snapshot
from engram_audit.model.inventory import EnvironmentEntry, Inventory
from engram_audit.model.snapshot_io import load_snapshot
from engram_audit.policy.inventory import find_inventory, load_inventory

AZURE_TARGET_FLAGS = ("subscription", "management_group", "resource_group", "server", "tag")
POSTGRES_TARGET_FLAGS = ("dsn", "dsn_env")
# Flags that only make sense against the live estate; a plan or template excludes them.
LIVE_ARM_FLAGS = (*AZURE_TARGET_FLAGS, "azure_token_env", "arm_endpoint")


@dataclass(frozen=True)
class EnvironmentRun:
    name: str
    policy: Policy
    snapshot: Snapshot | None
    snapshot_path: Path | None
    targets: LiveTargets
    gate: GateOptions
    fail_on: Severity


@dataclass(frozen=True)
class RunRequest:
    environments: tuple[str, ...]
    all_environments: bool
    snapshots: tuple[Path, ...]
    config: Path | None
    policy_path: Path | None
    policy_dir: Path | None
    fail_on: str | None
    gate: GateOptions
    options: Mapping[str, Any]


def plan_runs(request: RunRequest) -> list[EnvironmentRun]:
    inventory_path = find_inventory(request.config)
    inventory = load_inventory(inventory_path) if inventory_path else None
    base = inventory_path.parent if inventory_path else Path(".")
    snapshots = [(path, load_snapshot(path)) for path in request.snapshots]
    names = _environment_names(request, inventory, snapshots)
    iac = iac_request_from_options(request.options)
    if iac is not None and len(names) > 1:
        raise UsageError(f"{iac.flag} is one environment's planned state: give one --env")
    if request.policy_path is not None and len(names) > 1:
        raise UsageError("--policy FILE names one environment's policy: use it with one --env")
    by_name = _pair_snapshots(names, snapshots)
    # Flags name live targets for every environment: with snapshots they conflict. Checked once
    # here, not per environment (building a request reads DSNs and checks libpq's settings).
    if snapshots and (
        azure_request_from_options(request.options)
        or postgres_request_from_options(request.options)
    ):
        raise UsageError("give either --snapshot FILE or live targets, not both")
    runs = []
    for name in names:
        entry = inventory.environments.get(name) if inventory else None
        if inventory is not None and entry is None and request.all_environments:
            raise UsageError(f"environment {name!r} is not in {inventory_path}")
        runs.append(_run(name, entry, base, request, by_name.get(name)))
    return runs


def _environment_names(
    request: RunRequest, inventory: Inventory | None, snapshots: list[tuple[Path, Snapshot]]
) -> list[str]:
    if request.all_environments:
        if inventory is None:
            raise UsageError(
                "--all audits every environment of the inventory: none found "
                "(./engram-audit.yaml or --config FILE; `engram-audit init` writes one)"
            )
        if request.environments:
            raise UsageError("give either --all or --env, not both")
        return sorted(inventory.environments)
    if request.environments:
        return list(dict.fromkeys(request.environments))
    if snapshots:
        return list(dict.fromkeys(snapshot.environment for _, snapshot in snapshots))
    raise UsageError("give --env ENV (repeatable), --all, or --snapshot FILE")


def _pair_snapshots(
    names: list[str], snapshots: list[tuple[Path, Snapshot]]
) -> dict[str, tuple[Path, Snapshot]]:
    if not snapshots:
        return {}
    if len(names) == 1 and len(snapshots) == 1:
        return {names[0]: snapshots[0]}  # the one snapshot is this environment's, whatever it says
    paired: dict[str, tuple[Path, Snapshot]] = {}
    for path, snapshot in snapshots:
        if snapshot.environment in paired:
            raise UsageError(
                f"{paired[snapshot.environment][0]} and {path} are both snapshots of "
                f"{snapshot.environment!r}: give one per environment"
            )
        paired[snapshot.environment] = (path, snapshot)
    unpaired = [name for name in names if name not in paired]
    if unpaired:
        raise UsageError(f"no --snapshot names environment {', '.join(map(repr, unpaired))}")
    return paired


def _run(
    name: str,
    entry: EnvironmentEntry | None,
    base: Path,
    request: RunRequest,
    snapshot: tuple[Path, Snapshot] | None,
) -> EnvironmentRun:
    policy_path = request.policy_path
    if policy_path is None and entry is not None and entry.policy:
        policy_path = base / entry.policy
    policy = resolve_policy(name, policy_path, request.policy_dir)
    if entry is not None and entry.dsn_env is not None:
        policy = _with_dsn_variables(policy, entry.dsn_env)
    options = dict(request.options)
    if entry is not None:
        options = _inventory_options(name, entry, options)
    iac = iac_request_from_options(request.options)
    if iac is not None:
        targets = _planned_targets(iac, request, snapshot)
    elif snapshot is not None:
        targets = LiveTargets()
    else:
        targets = LiveTargets(
            azure=azure_request_from_options(options),
            postgres=postgres_request_from_options(options),
        )
    gate = request.gate
    if entry is not None:
        gate = replace(
            gate,
            waivers=gate.waivers or (base / entry.waivers if entry.waivers else None),
            baseline=gate.baseline or (base / entry.baseline if entry.baseline else None),
        )
    fail_on = request.fail_on or (entry.fail_on.value if entry and entry.fail_on else None)
    return EnvironmentRun(
        name=name,
        policy=policy,
        snapshot=snapshot[1] if snapshot else None,
        snapshot_path=snapshot[0] if snapshot else None,
        targets=targets,
        gate=gate,
        fail_on=Severity(fail_on or Severity.LOW.value),
    )


def iac_request_from_options(options: Mapping[str, Any]) -> IacRequest | None:
    """The plan or template the flags name as the run's Azure source; None when none."""
    plan, template = options.get("terraform_plan"), options.get("arm_template")
    parameters = options.get("arm_parameters")
    if plan is not None and template is not None:
        raise UsageError("give either --terraform-plan or --arm-template, not both")
    if parameters is not None and template is None:
        raise UsageError("--arm-parameters needs --arm-template")
    allow_empty = options.get("allow_empty") is True
    if plan is not None:
        return IacRequest("plan", Path(plan), allow_empty=allow_empty)
    if template is not None:
        return IacRequest(
            "template",
            Path(template),
            Path(parameters) if parameters is not None else None,
            allow_empty=allow_empty,
        )
    return None


def _planned_targets(
    iac: IacRequest, request: RunRequest, snapshot: tuple[Path, Snapshot] | None
) -> LiveTargets:
    """A plan or template is the run's Azure source: no live ARM flags, no snapshot beside it.
    Targets from the inventory are set aside; PostgreSQL and DSN rules need live state."""
    if snapshot is not None:
        raise UsageError(f"give either --snapshot FILE or {iac.flag}, not both")
    given = [flag for flag in LIVE_ARM_FLAGS if request.options.get(flag)]
    if given:
        flags = ", ".join("--" + flag.replace("_", "-") for flag in given)
        raise UsageError(
            f"{iac.flag} is the Azure source of this run: it excludes the live-ARM flags ({flags})"
        )
    return LiveTargets(iac=iac)


def _inventory_options(
    name: str, entry: EnvironmentEntry, options: dict[str, Any]
) -> dict[str, Any]:
    """The inventory's targets as the flags would give them; flags given win."""
    merged = dict(options)
    azure = entry.azure
    if azure is not None and not any(options.get(flag) for flag in AZURE_TARGET_FLAGS):
        # Several subscriptions, a management group or several servers are found through
        # Resource Graph (collectors.azure.graph); one server in one group stays a GET.
        if len(azure.tag) > 1:
            raise UsageError(f"environment {name!r}: discovery takes one tag, got {len(azure.tag)}")
        merged["subscription"] = azure.subscriptions
        merged["management_group"] = azure.management_group
        merged["resource_group"] = azure.resource_group
        merged["server"] = azure.servers
        merged["tag"] = next(iter(azure.tag.items())) if azure.tag else None
        if azure.cloud and not options.get("cloud"):
            merged["cloud"] = azure.cloud
    postgres = entry.postgres
    if postgres is not None and not any(options.get(f) for f in POSTGRES_TARGET_FLAGS):
        merged["dsn_env"] = postgres.dsn_env
        merged["entra_auth"] = options.get("entra_auth") or postgres.entra_auth
    if entry.allow_empty and not options.get("allow_empty"):
        merged["allow_empty"] = True
    return merged


def _with_dsn_variables(policy: Policy, variables: tuple[str, ...]) -> Policy:
    """An environment's ``dsn_env`` list replaces the variables of its dsn.sslmode rules."""
    rules = tuple(
        rule.model_copy(update={"params": {**rule.params, "variables": list(variables)}})
        if rule.check == "dsn.sslmode"
        else rule
        for rule in policy.rules
    )
    return policy.model_copy(update={"rules": rules})
