"""Which framework controls the policies enforce: control -> rules -> environments.

A rule enforces a control in an environment when that environment's resolved policy has the
rule enabled and citing the control (``controls:``; an environment that overrides a rule to the
opposite requirement, such as geo-redundant backup Disabled in staging, drops the citation). A
control no enabled rule cites is a gap; the controls catalogue says why (``not_covered``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from engram_audit.checks.azure.controls import Control, ControlCatalogue, control_catalogue
from engram_audit.model import Policy, Severity


@dataclass(frozen=True)
class Enforcement:
    """One rule citing the control, and the environments that enforce it, with the severity."""

    rule: str
    check: str
    environments: tuple[tuple[str, Severity], ...]


@dataclass(frozen=True)
class ControlCoverage:
    control: Control
    enforced_by: tuple[Enforcement, ...] = ()

    @property
    def covered(self) -> bool:
        return bool(self.enforced_by)

    @property
    def environments(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for enforcement in self.enforced_by:
            seen.update(dict.fromkeys(env for env, _ in enforcement.environments))
        return tuple(seen)


@dataclass(frozen=True)
class FrameworkCoverage:
    framework: str
    title: str
    version: str
    source: str
    controls: tuple[ControlCoverage, ...] = field(default=())

    @property
    def enforced(self) -> int:
        return sum(c.covered for c in self.controls)

    @property
    def explained(self) -> int:
        return sum(not c.covered and bool(c.control.not_covered) for c in self.controls)

    @property
    def unexplained(self) -> tuple[ControlCoverage, ...]:
        return tuple(c for c in self.controls if not c.covered and not c.control.not_covered)


def environment_order(policies: Iterable[Policy]) -> list[Policy]:
    """Environments in the order they build on each other (fewest files merged first)."""
    return sorted(policies, key=lambda p: (len(p.files), p.environment))


def coverage(
    policies: Sequence[Policy],
    frameworks: Iterable[str] | None = None,
    catalogue: ControlCatalogue | None = None,
) -> list[FrameworkCoverage]:
    """Coverage of each framework's controls by the given environments' policies."""
    catalogue = catalogue or control_catalogue()
    ordered = environment_order(policies)
    citing: dict[str, dict[str, list[tuple[str, Severity]]]] = {}
    checks: dict[str, str] = {}
    for policy in ordered:
        for rule in policy.enabled_rules():
            checks.setdefault(rule.id, rule.check)
            for control in rule.controls:
                rules = citing.setdefault(control.key, {})
                rules.setdefault(rule.id, []).append((policy.environment, rule.severity))
    wanted = list(frameworks) if frameworks is not None else list(catalogue.frameworks)
    result = []
    for framework_id in wanted:
        framework = catalogue.frameworks[framework_id]
        controls = tuple(
            ControlCoverage(
                control,
                tuple(
                    Enforcement(rule, checks[rule], tuple(envs))
                    for rule, envs in sorted(citing.get(control.key, {}).items())
                ),
            )
            for control in catalogue.of(framework_id)
        )
        result.append(
            FrameworkCoverage(
                framework_id, framework.title, framework.version, framework.source, controls
            )
        )
    return result
