"""Checks that Azure Monitor alerts exist for what the design says must page someone."""

from __future__ import annotations

import math
from collections.abc import Iterator

from pydantic import Field, model_validator

from engram_audit.checks.azure.common import (
    ParameterLookup,
    configuration_id,
    each_server,
    setting,
)
from engram_audit.checks.base import CheckContext, Outcome, Params, check, errored, verdict
from engram_audit.checks.facts import FactValue
from engram_audit.model.base import Source
from engram_audit.model.snapshot import AlertCriterion, MetricAlert
from engram_audit.model.values import as_int, fold, resource_id_covers, text


class AlertRequirement(Params):
    name: str = Field(description="What the alert is for, shown in findings")
    metrics: list[str] = Field(min_length=1, description="Metric names that satisfy it (any one)")
    aggregations: list[str] = Field(
        default_factory=lambda: ["Average", "Maximum"],
        min_length=1,
        description="Time aggregations that make sense for the metric (Average or Maximum for "
        "percentages and counts; Minimum fires late, Total and Count sum a gauge)",
    )
    max_threshold: float | None = Field(
        default=None, description="Alert must fire at or below this value"
    )
    max_threshold_percent_of_max_connections: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="Threshold bound as a share of the server's max_connections",
    )

    @model_validator(mode="after")
    def _one_bound(self) -> AlertRequirement:
        if (
            self.max_threshold is not None
            and self.max_threshold_percent_of_max_connections is not None
        ):
            raise ValueError(
                "give max_threshold or max_threshold_percent_of_max_connections, not both"
            )
        return self


class AlertsParams(Params):
    required: list[AlertRequirement] = Field(min_length=1)


# Requirements are upper bounds ("alert when storage exceeds 90 %"): only an alert that fires
# on high values meets one; a LessThan alert on the same metric watches the opposite problem.
_RISING_OPERATORS = frozenset({"greaterthan", "greaterthanorequal"})
FLEXIBLE_SERVER_NAMESPACE = "microsoft.dbforpostgresql/flexibleservers"


def _describe(requirement: AlertRequirement) -> str:
    metric = "/".join(requirement.metrics)
    if requirement.max_threshold is not None:
        return f"{requirement.name}: {metric} > X with X <= {requirement.max_threshold:g}"
    if requirement.max_threshold_percent_of_max_connections is not None:
        percent = requirement.max_threshold_percent_of_max_connections
        return f"{requirement.name}: {metric} > X with X <= {percent:g}% of max_connections"
    return f"{requirement.name}: {metric} > X"


def _max_connections(lookup: ParameterLookup, expected: str) -> int | Outcome:
    """max_connections, or the outcome to report when it is missing or unreadable (judged
    against Azure's parameter catalogue, like every parameter)."""
    parameter = lookup.require("max_connections", expected)
    if isinstance(parameter, Outcome):
        return parameter
    value = as_int(parameter.value)
    if value is None:
        return errored(
            configuration_id(lookup.server, "max_connections"),
            f"max_connections={text(parameter.value)} is not a whole number",
            expected,
        )
    return value


def _threshold_bound(requirement: AlertRequirement, max_connections: int | None) -> float | None:
    """The highest acceptable threshold (None: any)."""
    if requirement.max_threshold is not None:
        return requirement.max_threshold
    percent = requirement.max_threshold_percent_of_max_connections
    if percent is None or max_connections is None:
        return None
    return max_connections * percent / 100


def _criterion_problem(
    criterion: AlertCriterion, requirement: AlertRequirement, bound: float | None
) -> str | None:
    """Why this condition does not meet the requirement; None when it does."""
    if fold(criterion.metric_name) not in {fold(m) for m in requirement.metrics}:
        return f"watches {criterion.metric_name}"
    namespace = criterion.metric_namespace
    if namespace and namespace.strip().casefold() != FLEXIBLE_SERVER_NAMESPACE:
        return f"watches {namespace}/{criterion.metric_name}"
    if fold(criterion.operator) not in _RISING_OPERATORS:
        return f"fires on {criterion.operator or 'an unknown operator'}, not on high values"
    if fold(criterion.time_aggregation) not in {fold(a) for a in requirement.aggregations}:
        return (
            f"aggregates by {criterion.time_aggregation or 'an unknown aggregation'}, "
            f"not {'/'.join(requirement.aggregations)}"
        )
    if bound is not None and criterion.threshold is None:
        return f"has no static threshold to hold against {bound:g} (dynamic threshold?)"
    if bound is not None and criterion.threshold is not None and criterion.threshold > bound:
        return f"threshold {criterion.threshold:g} is above {bound:g}"
    return None


def _alert_problem(
    alert: MetricAlert, requirement: AlertRequirement, bound: float | None
) -> str | None:
    """Why this alert does not page for the requirement; None when it does.

    An alert fires only when all its conditions hold (``criteria.allOf``, "the list of metric
    criteria for this 'all of' operation" in the Azure Monitor metric alerts API), so every
    condition must meet the requirement; a condition on another metric makes it fire less often.
    """
    if not alert.enabled:
        return "disabled"
    if not alert.action_groups:
        return "no action group (it fires but notifies no one)"
    if not alert.criteria:
        return "no metric condition"
    problems = [_criterion_problem(c, requirement, bound) for c in alert.criteria]
    if all(problem is None for problem in problems):
        return None
    if len(alert.criteria) > 1 and any(problem is None for problem in problems):
        return f"fires only when all {len(alert.criteria)} conditions hold (allOf)"
    return next(problem for problem in problems if problem is not None)


def _alert_setting(requirement: AlertRequirement, bound: float | None) -> str:
    """The ``setting`` fact for a missing alert: ``metric_alerts.<metric>.<aggregation>`` with
    the highest threshold that meets the requirement (whole, rounded down), when it has one."""
    path = f"metric_alerts.{requirement.metrics[0]}.{requirement.aggregations[0]}"
    return setting(path, None if bound is None else f"{math.floor(bound):d}")


# az monitor metrics alert create --condition: "{avg,min,max,total,count} METRIC > THRESHOLD"
# (the command's help); ARM's timeAggregation names, as the requirement spells them.
_AZ_AGGREGATIONS = {
    "average": "avg",
    "minimum": "min",
    "maximum": "max",
    "total": "total",
    "count": "count",
}


def _condition(requirement: AlertRequirement, bound: float | None) -> str | None:
    """The az condition of an alert that meets ``requirement`` (its first metric and
    aggregation, the bound as threshold, rounded down for a share of max_connections); None
    without a bound or for an aggregation az cannot write."""
    aggregation = _AZ_AGGREGATIONS.get(fold(requirement.aggregations[0]))
    if bound is None or aggregation is None:
        return None
    if requirement.max_threshold_percent_of_max_connections is not None:
        threshold = str(math.floor(bound))
    else:
        threshold = str(int(bound)) if float(bound).is_integer() else str(bound)
    return f"{aggregation} {requirement.metrics[0]} > {threshold}"


def _alert_facts(
    missing: list[tuple[AlertRequirement, float | None]],
) -> dict[str, FactValue]:
    """One alert and condition per missing requirement; none when any cannot be written."""
    conditions = [_condition(requirement, bound) for requirement, bound in missing]
    if not missing or any(condition is None for condition in conditions):
        return {}
    return {
        "alert": tuple(requirement.name for requirement, _ in missing),
        "condition": tuple(c for c in conditions if c is not None),
    }


def _watches(alert: MetricAlert, requirement: AlertRequirement) -> bool:
    metrics = {fold(m) for m in requirement.metrics}
    return any(fold(c.metric_name) in metrics for c in alert.criteria)


@check(
    "azure.monitor.alerts",
    sources=[Source.AZURE],
    params=AlertsParams,
    reads=("azure.metric_alerts", "azure.parameters", "azure.server"),
    planned=True,
    facts=("setting", "alert", "condition"),
)
def monitor_alerts(params: AlertsParams, context: CheckContext) -> Iterator[Outcome]:
    """Enabled Azure Monitor metric alerts with an action group cover the server for each required condition.

    The design names the alerts: connections above 80 % of max_connections and storage above
    90 % (and slow queries and backup failures, which are no Azure metric: `pg.queries.slow` and
    `azure.backup.recent` keep those promises; Microsoft's "Supported metrics for
    Microsoft.DBforPostgreSQL/flexibleServers" list `backup_storage_used`, the bytes backups
    occupy, but nothing that reports a failed backup). An alert counts when it is enabled, has
    at least one action group (otherwise it notifies no one), its scope covers the server, and
    every one of its conditions (an alert fires only when all of `criteria.allOf` hold) watches
    an accepted metric of a flexible server, fires on high values (GreaterThan or
    GreaterThanOrEqual), aggregates sensibly (Average or Maximum by default: Minimum fires only
    when the whole window is high, Total and Count add up a gauge) and has its threshold at or
    below the required one. A missing requirement's finding says why each alert on its metric
    does not count.

    A failure's fix creates one alert per missing requirement (`{alert}`, `{condition}`: its
    first metric and aggregation, with the bound as threshold, rounded down when it is a share of
    max_connections).

    Remediation: `az monitor metrics alert create --resource-group {resource_group} --name {server}-{alert} --scopes {server_id} --condition "{condition}" --action <action group id>`,
    with an action group that pages the on-call engineer.
    """
    expected = "; ".join(_describe(r) for r in params.required)
    for server in each_server(context):
        if server.metric_alerts is None:
            yield context.not_collected(server.id, "metric_alerts", expected)
            continue
        covering = [
            alert
            for alert in server.metric_alerts
            if any(resource_id_covers(scope, server.id) for scope in alert.scopes)
        ]
        usable = [alert for alert in covering if alert.enabled and alert.action_groups]
        max_connections: int | None = None
        if any(r.max_threshold_percent_of_max_connections is not None for r in params.required):
            found = _max_connections(ParameterLookup(context, server), expected)
            if isinstance(found, Outcome):
                yield found
                continue
            max_connections = found
        bounds = [_threshold_bound(r, max_connections) for r in params.required]
        missing: list[str] = []
        unmet: list[tuple[AlertRequirement, float | None]] = []
        reasons: list[str] = []
        settings: list[str] = []
        for requirement, bound in zip(params.required, bounds, strict=True):
            judged = [(alert, _alert_problem(alert, requirement, bound)) for alert in covering]
            if any(problem is None for _, problem in judged):
                continue
            missing.append(requirement.name)
            settings.append(_alert_setting(requirement, bound))
            unmet.append((requirement, bound))
            reasons.extend(
                f"{requirement.name}: {alert.name} {problem}"
                for alert, problem in sorted(judged, key=lambda pair: (pair[0].name, pair[0].id))
                if _watches(alert, requirement)
            )
        actual = f"{len(usable)} enabled alert(s) with an action group cover the server" + (
            f"; missing: {', '.join(missing)}" if missing else "; all required alerts present"
        )
        fix: dict[str, FactValue] = {**_alert_facts(unmet)}
        if settings:
            fix["setting"] = tuple(settings)
        yield verdict(not missing, server.id, expected, actual, "; ".join(reasons), facts=fix)
