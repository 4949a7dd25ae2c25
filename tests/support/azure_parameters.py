"""Server-parameter lists as ARM gives them, built from Azure's catalogue, never by hand.

The fixture generators (``fixtures/snapshots/generate.py``, ``fixtures/arm/generate.py``) take
every parameter list from here: the parameters Azure lists for a server's major version and
tier (``pgbouncer.*`` only on General Purpose / Memory Optimized, and except
``pgbouncer.enabled`` only while it is true), Azure's default as the value unless a fixture
overrides it, Azure's allowed values and ARM's data-type spelling. The facts come from the
catalogue the checks ship (``engram_audit/checks/azure/data/server-parameters.json``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from engram_audit.checks.azure.catalogue import Availability, allowed_values, parameter_catalogue


def max_connections(sku_name: str) -> int:
    """Azure's max_connections default for a SKU (``Standard_D4ds_v5``), from the catalogue's
    table (concepts-limits): computed from the SKU's memory when the server is provisioned."""
    short = sku_name.removeprefix("Standard_")
    for row in parameter_catalogue().max_connections_defaults["skus"]:
        if any(fnmatch.fnmatchcase(short, name.strip()) for name in row["sku"].split("/")):
            return int(row["max_connections"])
    raise KeyError(f"no max_connections default for {sku_name} in the catalogue")


def listed_values(major: str, tier: str, values: Mapping[str, str]) -> dict[str, str]:
    """The values ARM still lists: one Azure hides on this tier or switch state is dropped
    (``pgbouncer.default_pool_size`` once PgBouncer is off, every ``pgbouncer.*`` on Burstable)."""
    catalogue = parameter_catalogue()
    return {
        name: value
        for name, value in values.items()
        if catalogue.offer(name, major=major, tier=tier, value_of=values.get).availability
        is not Availability.NOT_OFFERED
    }


def parameter_list(
    major: str,
    tier: str,
    sku_name: str,
    overrides: Mapping[str, str],
    outside_allowed: frozenset[tuple[str, str]] = frozenset(),
) -> dict[str, dict[str, Any]]:
    """The snapshot's ``parameters`` for such a server (name -> value, default_value,
    data_type, allowed_values, source). Parameters whose default the catalogue does not record
    for ``major`` are left out rather than invented. An override outside Azure's allowed values
    raises unless it is listed in ``outside_allowed`` (a deliberate drift)."""
    params: dict[str, dict[str, Any]] = {}
    for facts, row in parameter_catalogue().listed(major=major, tier=tier, values=overrides):
        if facts.name == "max_connections":
            default: str | None = str(max_connections(sku_name))  # the docs' cell is prose
        else:
            default = row.default
        if default is None:
            continue
        value = overrides.get(facts.name, default)
        allowed = allowed_values(row.allowed, facts.data_type)
        # Azure's own defaults are taken as they are (ssl_max_protocol_version's '' is not in
        # the docs' allowed cell; ARM's allowedValues for it starts with an empty item).
        if (
            facts.name in overrides
            and allowed is not None
            and allowed.admits(value) is False
            and (facts.name, value) not in outside_allowed
        ):
            raise ValueError(
                f"{facts.name}={value!r} is outside Azure's allowed values {row.allowed}"
            )
        params[facts.name] = {
            "value": value,
            "default_value": default,
            "data_type": facts.arm_data_type,
            "allowed_values": row.allowed,
            "source": "user-override" if value != default else "system-default",
        }
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise ValueError(f"Azure does not list {unknown} on PostgreSQL {major} {tier}")
    return params
