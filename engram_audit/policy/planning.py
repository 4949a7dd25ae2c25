"""What to collect: the union of what the enabled rules' checks declare they read and request.

Collectors receive the resulting ``CollectionPlan`` and never see the policy. A check added to
the catalogue changes the plan through its own declaration; nothing here names a check.
"""

from __future__ import annotations

from engram_audit.checks import get_check
from engram_audit.model import Policy
from engram_audit.model.plan import (
    CollectionPlan,
    DsnVariablesPlan,
    ExpiredFactsPlan,
    SessionRetentionPlan,
    SoftDeletedPlan,
)


def plan_for(policy: Policy) -> CollectionPlan:
    """The parts, queries and inputs the enabled rules need (unknown checks add nothing: the
    engine reports them before anything is collected).

    Retention and soft-delete counts are collected once per distinct request, so several
    rules (several tables, or one table with other criteria) are each counted on their own.
    """
    parts: set[str] = set()
    retention: list[SessionRetentionPlan] = []
    soft_deleted: list[SoftDeletedPlan] = []
    expired_facts: ExpiredFactsPlan | None = None
    variables: set[str] = set()
    for rule in sorted(policy.enabled_rules(), key=lambda r: r.id):
        check = get_check(rule.check)
        if check is None:
            continue
        parts |= check.reads
        for request in check.requests(check.parse_params(rule.params)):
            if isinstance(request, SessionRetentionPlan):
                if request not in retention:
                    retention.append(request)
            elif isinstance(request, SoftDeletedPlan):
                if request not in soft_deleted:
                    soft_deleted.append(request)
            elif isinstance(request, ExpiredFactsPlan):
                expired_facts = request
            elif isinstance(request, DsnVariablesPlan):
                variables.update(request.variables)
    return CollectionPlan(
        environment=policy.environment,
        parts=frozenset(parts),
        database=policy.scope.database,
        schemas=policy.scope.schemas,
        exclude_tables=policy.scope.exclude_tables,
        retention=tuple(retention),
        soft_deleted=tuple(soft_deleted),
        expired_facts=expired_facts,
        dsn_variables=tuple(sorted(variables)),
    )
