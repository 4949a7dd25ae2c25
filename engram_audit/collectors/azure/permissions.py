"""What the identity may read, from ARM itself: needed where silence is not an answer.

Azure Resource Graph answers a query with the resources the identity can read and leaves the
others out, without an error (Microsoft, "What is Azure Resource Graph?", "Permissions in Azure
Resource Graph": "Without at least read permissions to the Azure object or object group,
results won't be returned"; MicrosoftDocs/azure-docs ``articles/governance/resource-graph/
overview.md``). For
metric alerts that means "no alert covers this server" and "the identity may not read alerts"
give the same empty answer: a FAIL that should be an ERROR. So, when a rule reads metric
alerts and they come from Resource Graph, the collector also asks ARM what the identity may do
in each subscription of the run, and counts the alerts as collected only where
``Microsoft.Insights/metricAlerts/read`` is granted.

The call is the Authorization "Permissions" list, at subscription scope::

    GET /subscriptions/{subscriptionId}/providers/Microsoft.Authorization/permissions
        ?api-version=2022-04-01
    200 {"value": [{"actions": [...], "notActions": [...], "dataActions": [...],
                    "notDataActions": [...]}], "nextLink": "..."}

- Shape and api-version: Azure REST API specs, ``specification/authorization/resource-manager/
  Microsoft.Authorization/Authorization/stable/2022-04-01/authorization-RoleDefinitionsCalls.json``
  (``PermissionGetResult``, ``Permission``; pageable by ``nextLink``) and its example
  ``examples/GetPermissions.json``. The specs define the operation for a resource group
  (``Permissions_ListForResourceGroup``) and a resource; the same list for a subscription is
  shown by Microsoft, "Use Resource Manager authentication API to access subscriptions"
  (MicrosoftDocs/azure-docs ``articles/azure-resource-manager/resource-manager-api-authentication.md``,
  "Check if user can assign access to subscription": ``GET .../subscriptions/{id}/providers/
  microsoft.authorization/permissions``, answer ``{"value":[{"actions":["*"],"notActions":
  [...]},{"actions":["*/read"],"notActions":[]}]}``). The subscription scope is the question
  asked here: an alert covering a server may live in any resource group of the subscription.
- Calling it needs ``Microsoft.Authorization/permissions/read`` (REST reference,
  "Permissions - List For Resource Group", Permissions); the built-in Reader role's ``*/read``
  includes it. A refusal (403) or any other failure means the alerts cannot be confirmed:
  ERROR, never a pass or a fail.
- Matching, as Microsoft documents it ("Understand Azure role definitions",
  https://learn.microsoft.com/azure/role-based-access-control/role-definitions, sections
  "Actions format", "Actions" and "NotActions"): an action string is
  ``{Company}.{ProviderName}/{resourceType}/{action}``; ``*`` is a wildcard that "grants access
  to all actions that match the string" (``*/read`` reads every resource type of every provider,
  ``Microsoft.Network/*/read`` every resource type of one provider, nested types included, so a
  ``*`` may span ``/``); a permission's effective actions are its ``actions`` less its
  ``notActions``, and NotActions "is not a deny rule": another permission (another role
  assignment) that grants the action grants it ("If an action is present in the allowed actions
  of any permission and not present in the disallowed actions of that permission, the user is
  allowed to do that action": the authentication article above). Action strings are compared
  case-insensitively: Microsoft's own roles spell them in mixed case (Contributor's
  ``Microsoft.Authorization/*/Delete`` excludes ``.../roleAssignments/delete``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from engram_audit.collectors.azure.clients import PERMISSIONS_API_VERSION, ArmClients
from engram_audit.collectors.azure.parts import UnexpectedList, raw_list

PERMISSIONS_PERMISSION = "Microsoft.Authorization/permissions/read"


@dataclass(frozen=True)
class Permission:
    """One entry of the permissions list: control-plane actions granted, and those excluded."""

    actions: tuple[str, ...]
    not_actions: tuple[str, ...]


class UnreadablePermissions(UnexpectedList):
    """ARM's answer is not a permissions list this module can judge."""


def permissions_path(subscription_id: str) -> str:
    return f"/subscriptions/{quote(subscription_id, safe='')}/providers/Microsoft.Authorization/permissions"


def read_permissions(clients: ArmClients, subscription_id: str) -> tuple[Permission, ...]:
    """Every permission the identity holds on the subscription (every page of the list)."""
    path = permissions_path(subscription_id)
    items = raw_list(clients, subscription_id, path, PERMISSIONS_API_VERSION)
    return tuple(_permission(item) for item in items)


def _permission(item: dict[str, Any]) -> Permission:
    return Permission(_actions(item, "actions"), _actions(item, "notActions"))


def _actions(item: dict[str, Any], key: str) -> tuple[str, ...]:
    value = item.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise UnreadablePermissions(f"{key} is not a list of action strings")
    return tuple(value)


@lru_cache(maxsize=256)
def _pattern(action: str) -> re.Pattern[str]:
    # Only ``*`` is special; everything else (``.``, ``/``) is literal.
    return re.compile(".*".join(re.escape(part) for part in action.split("*")), re.IGNORECASE)


def action_matches(pattern: str, action: str) -> bool:
    """Whether an ``actions`` / ``notActions`` entry covers ``action`` (wildcards, any case)."""
    return _pattern(pattern.strip()).fullmatch(action) is not None


def allows(permissions: tuple[Permission, ...], action: str) -> bool:
    """Whether some permission grants ``action`` without excluding it."""
    return any(
        any(action_matches(granted, action) for granted in permission.actions)
        and not any(action_matches(excluded, action) for excluded in permission.not_actions)
        for permission in permissions
    )
