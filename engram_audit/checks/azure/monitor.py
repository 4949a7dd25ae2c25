"""Checks that Azure Monitor alerts exist for what the design says must page someone."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import Field, model_validator

from engram_audit.checks.azure.common import ParameterLookup, configuration_id, each_server
from engram_audit.checks.base import CheckContext, Outcome, Params, check, errored, verdict
from engram_audit.model.base import Source
from engram_audit.model.snapshot import MetricAlert
from engram_audit.model.values import as_int, fold, resource_id_covers, text


class AlertRequirement(Params):
    name: str = Field(description="What the alert is for, shown in findings")
    metrics: list[str] = Field(min_length=1, description="Metric names that satisfy it (any one)")
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
    """max_connections, or the outcome to report when it is missing or unreadable."""
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


def _satisfies(alert: MetricAlert, requirement: AlertRequirement, bound: float | None) -> bool:
    metrics = {fold(m) for m in requirement.metrics}
    for criterion in alert.criteria:
        if fold(criterion.metric_name) not in metrics:
            continue
        if fold(criterion.operator) not in _RISING_OPERATORS:
            continue
        namespace = criterion.metric_namespace
        if namespace and namespace.strip().casefold() != FLEXIBLE_SERVER_NAMESPACE:
            continue
        if bound is None:
            return True
        if criterion.threshold is not None and criterion.threshold <= bound:
            return True
    return False


@check(
    "azure.monitor.alerts",
    sources=[Source.AZURE],
    params=AlertsParams,
    reads=("azure.metric_alerts", "azure.parameters", "azure.server"),
)
def monitor_alerts(params: AlertsParams, context: CheckContext) -> Iterator[Outcome]:
    """Enabled Azure Monitor metric alerts cover the server for each required condition.

    The design names the alerts: connections above 80 % of max_connections, storage above 90 %,
    and backup failures. An alert counts when it is enabled, its scope covers the server, it
    watches one of the accepted metrics of a flexible server with a rising condition
    (GreaterThan), and its threshold is at or below the required one.

    Remediation: `az monitor metrics alert create --scopes <server id> --condition "avg storage_percent > 90"`
    (and likewise for active_connections), with an action group that pages the on-call engineer.
    """
    expected = "; ".join(_describe(r) for r in params.required)
    for server in each_server(context):
        if server.metric_alerts is None:
            yield context.not_collected(server.id, "metric_alerts", expected)
            continue
        covering = [
            alert
            for alert in server.metric_alerts
            if alert.enabled and any(resource_id_covers(scope, server.id) for scope in alert.scopes)
        ]
        max_connections: int | None = None
        if any(r.max_threshold_percent_of_max_connections is not None for r in params.required):
            found = _max_connections(ParameterLookup(context, server), expected)
            if isinstance(found, Outcome):
                yield found
                continue
            max_connections = found
        bounds = [_threshold_bound(r, max_connections) for r in params.required]
        missing = [
            requirement.name
            for requirement, bound in zip(params.required, bounds, strict=True)
            if not any(_satisfies(alert, requirement, bound) for alert in covering)
        ]
        actual = f"{len(covering)} enabled alert(s) cover the server" + (
            f"; missing: {', '.join(missing)}" if missing else "; all required alerts present"
        )
        yield verdict(not missing, server.id, expected, actual)
