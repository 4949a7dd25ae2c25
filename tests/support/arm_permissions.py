"""The emulator's principal: what the bearer token may do, and what ARM says about it.

Modelled, and from where:

- ``GET /subscriptions/{id}/providers/Microsoft.Authorization/permissions`` answers the
  principal's permissions on that subscription as ``{"value": [{"actions", "notActions",
  "dataActions", "notDataActions"}]}``: the shape of ``PermissionGetResult`` in the REST API
  specs (``specification/authorization/resource-manager/Microsoft.Authorization/Authorization/
  stable/2022-04-01/authorization-RoleDefinitionsCalls.json``, example ``GetPermissions.json``);
  the subscription scope as in Microsoft, "Use Resource Manager authentication API to access
  subscriptions" (MicrosoftDocs/azure-docs ``articles/azure-resource-manager/
  resource-manager-api-authentication.md``). One page, no ``nextLink``. It is a read under the
  subscription like any other, so it draws on the subscription's read bucket.
- Resource Graph returns only rows the principal may read (Microsoft, "What is Azure Resource
  Graph?", "Permissions in Azure Resource Graph": "Without at least read permissions to the
  Azure object or object group, results won't be returned"): a row of type ``T`` in
  subscription ``S`` is returned when the principal's permissions on ``S`` grant ``T/read``.
- The default principal holds the built-in Reader role's one permission, ``actions: ["*/read"]``
  (Microsoft, "Azure built-in roles", Reader, ``acdd72a7-3385-48ef-bd42-f606fba81ae7``), so
  every test that does not restrict it sees what it always saw. ``ArmEmulator.set_permissions``
  restricts it, for every subscription or one.
- Matching (here written independently of the collector's, so a test does not check the code
  against itself): ``*`` matches any run of characters, ``/`` included; an action is granted when
  one permission lists it in ``actions`` and not in its own ``notActions``; any case (Microsoft,
  "Understand Azure role definitions": "Actions format", "NotActions").

ARM's own GETs are not authorised against these permissions: a test that wants a 403 on a
particular list injects it (``ArmEmulator.inject``), as before.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from dataclasses import dataclass, field
from typing import Any

PERMISSIONS_PATH = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.Authorization/permissions/?$",
    re.IGNORECASE,
)
# The built-in Reader role's permission.
READER: tuple[dict[str, list[str]], ...] = (
    {"actions": ["*/read"], "notActions": [], "dataActions": [], "notDataActions": []},
)


def _covers(pattern: str, action: str) -> bool:
    # fnmatch's ``*`` spans ``/``; ``?`` and ``[`` never occur in action strings.
    return fnmatch.fnmatchcase(action.casefold(), pattern.casefold())


@dataclass
class Principal:
    """The permissions of the emulator's one principal, per subscription (``None``: any)."""

    _permissions: dict[str | None, tuple[dict[str, Any], ...]] = field(
        default_factory=lambda: {None: READER}
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def restrict(self, permissions: list[dict[str, Any]], subscription: str | None = None) -> None:
        key = subscription.casefold() if subscription else None
        with self._lock:
            self._permissions[key] = tuple(permissions)

    def of(self, subscription: str) -> tuple[dict[str, Any], ...]:
        with self._lock:
            found = self._permissions.get(subscription.casefold())
            return found if found is not None else self._permissions[None]

    def can(self, subscription: str, action: str) -> bool:
        return any(
            any(_covers(p, action) for p in permission.get("actions") or ())
            and not any(_covers(p, action) for p in permission.get("notActions") or ())
            for permission in self.of(subscription)
        )

    def can_read_row(self, row: dict[str, Any]) -> bool:
        """Whether Resource Graph shows this row of the ``resources`` table to the principal."""
        return self.can(str(row.get("subscriptionId") or ""), f"{row.get('type')}/read")

    def answer(self, path: str, subscriptions: set[str]) -> dict[str, Any] | None:
        """The permissions list for ``path``, or None when it is not that request (or the
        subscription is not in the world: the usual 404 then)."""
        match = PERMISSIONS_PATH.match(path)
        if match is None or match["sub"].casefold() not in subscriptions:
            return None
        return {"value": [dict(permission) for permission in self.of(match["sub"])]}
