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
)


def plan_for(policy: Policy) -> CollectionPlan:
    """The parts, queries and inputs the enabled rules need (unknown checks add nothing: the
    engine reports them before anything is collected)."""
    parts: set[str] = set()
    session_retention: SessionRetentionPlan | None = None
    expired_facts: ExpiredFactsPlan | None = None
    variables: set[str] = set()
    for rule in sorted(policy.enabled_rules(), key=lambda r: r.id):
        check = get_check(rule.check)
        if check is None:
            continue
        parts |= check.reads
        for request in check.requests(check.parse_params(rule.params)):
            if isinstance(request, SessionRetentionPlan):
                session_retention = request
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
        session_retention=session_retention,
        expired_facts=expired_facts,
        dsn_variables=tuple(sorted(variables)),
    )
