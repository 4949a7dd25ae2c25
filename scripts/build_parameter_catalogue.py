"""Build the Azure server-parameter catalogue the checks ship as package data.

    python scripts/build_parameter_catalogue.py [path/to/azure-server-parameters.json]

Input: the shared reference ``azure-server-parameters.json`` (Microsoft's parameter tables for
PostgreSQL 11-18, every version entry naming the ``file@commit`` it was read from). Output:
``engram_audit/checks/azure/data/server-parameters.json``, which keeps, verbatim, the reference's
``_about`` (source URLs, retrieval date, reading notes), every parameter entry with its per-version
``source``, and the ``max_connections_defaults`` table.

The reference says two visibility rules only in prose notes; the checks need them as data, so
this script adds them as fields, each with the Microsoft page that states it (``ADDITIONS``).
Nothing else is added or changed: a fact that is not in the reference or on a cited Microsoft
page does not go into the catalogue.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = ROOT.parent / "shared" / "reference" / "azure-server-parameters.json"
OUTPUT = ROOT / "engram_audit" / "checks" / "azure" / "data" / "server-parameters.json"

PGBOUNCER_PAGE = "https://learn.microsoft.com/azure/postgresql/flexible-server/concepts-pgbouncer"
PGBOUNCER = (
    "pgbouncer.default_pool_size",
    "pgbouncer.enabled",
    "pgbouncer.ignore_startup_parameters",
    "pgbouncer.max_client_conn",
    "pgbouncer.max_prepared_statements",
    "pgbouncer.min_pool_size",
    "pgbouncer.pool_mode",
    "pgbouncer.query_wait_timeout",
    "pgbouncer.server_idle_timeout",
    "pgbouncer.stats_users",
)
# ARM's sku.tier values (SkuTier: Burstable, GeneralPurpose, MemoryOptimized; see
# tests/azure/api_versions/SHAPES.md section 7).
PGBOUNCER_TIERS = {
    "offered_on_tiers": ["GeneralPurpose", "MemoryOptimized"],
    "tiers_source": (
        f'{PGBOUNCER_PAGE}: PgBouncer "is supported on General Purpose and Memory Optimized '
        "compute tiers in both public access and private access networks\"; the reference's note "
        'on pgbouncer.enabled: "hidden on Burstable, where PgBouncer is not supported".'
    ),
}
LISTED_ONLY_WHEN_ENABLED = {
    "listed_only_when": {"parameter": "pgbouncer.enabled", "value": "true"},
    "listed_only_when_source": (
        f"{PGBOUNCER_PAGE}: the PgBouncer server parameters other than pgbouncer.enabled are "
        '"visible on the Server parameters pane only if the pgbouncer.enabled server parameter is '
        "set to true. Otherwise, they're deliberately hidden.\" The reference's tables carry the "
        "same note on every version 11-18."
    ),
}
ADDITIONS: dict[str, dict[str, Any]] = {
    name: {**PGBOUNCER_TIERS, **({} if name == "pgbouncer.enabled" else LISTED_ONLY_WHEN_ENABLED)}
    for name in PGBOUNCER
}
ADDITIONS["pgbouncer.default_pool_size"]["description"] = (
    "Server connections PgBouncer keeps per user/database pair, not per server or per "
    f"application instance (Microsoft's PgBouncer parameter table, {PGBOUNCER_PAGE})."
)


def build(reference: dict[str, Any]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for name, entry in sorted(reference["parameters"].items()):
        parameters[name] = {**entry, **ADDITIONS.get(name, {})}
    missing = sorted(set(ADDITIONS) - set(parameters))
    if missing:
        raise SystemExit(f"the reference lacks parameters this script annotates: {missing}")
    about = dict(reference["_about"])
    about["derived_by"] = (
        "scripts/build_parameter_catalogue.py from the project's shared reference "
        "azure-server-parameters.json; it adds only the fields listed in that script's ADDITIONS "
        "(offered_on_tiers, listed_only_when, description), each with the Microsoft page it "
        "comes from."
    )
    about["source_urls"] = [*about["source_urls"], PGBOUNCER_PAGE]
    return {
        "_about": about,
        "parameters": parameters,
        "max_connections_defaults": reference["max_connections_defaults"],
    }


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_INPUT
    catalogue = build(json.loads(source.read_text(encoding="utf-8")))
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(catalogue, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({len(catalogue['parameters'])} parameters)")


if __name__ == "__main__":
    main()
