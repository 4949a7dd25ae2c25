"""The JSON Schemas shipped with the package: names and the loader.

Reading a shipped schema imports nothing else of engram-audit, so validating a waivers file
does not load the check catalogue. ``generate`` builds the policy and snapshot schemas from
the code; ``python -m engram_audit.schemas`` rewrites them and a test fails when they drift.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

POLICY_SCHEMA = "policy.schema.json"
SNAPSHOT_SCHEMA = "snapshot.schema.json"
WAIVERS_SCHEMA = "waivers.schema.json"
INVENTORY_SCHEMA = "inventory.schema.json"
REPORT_SCHEMA = "report.schema.json"
SCHEMA_BASE_URI = "https://github.com/engram/engram-audit/schemas/"


@cache
def shipped(name: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded
