"""Generators of the shipped policy and snapshot schemas, from the check catalogue and model."""

from __future__ import annotations

import copy
import json
from typing import Any

from engram_audit.checks import CATALOGUE
from engram_audit.checks.azure.controls import control_catalogue
from engram_audit.checks.facts import FACTS, PERSON_FACTS
from engram_audit.model.base import SEVERITIES_ASCENDING
from engram_audit.model.inventory import ENVIRONMENT_PATTERN, Inventory
from engram_audit.model.report import Report
from engram_audit.model.snapshot import Snapshot
from engram_audit.schemas import (
    INVENTORY_SCHEMA,
    POLICY_SCHEMA,
    REPORT_SCHEMA,
    SCHEMA_BASE_URI,
    SNAPSHOT_SCHEMA,
)

RULE_ID_PATTERN = "^[A-Za-z][A-Za-z0-9_.-]*$"


def _partial_params_schema(check_schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """A check's params schema without ``required``: an environment may override one key only."""
    schema = copy.deepcopy(check_schema)
    defs.update(schema.pop("$defs", {}))
    schema.pop("required", None)
    schema.pop("title", None)
    return schema


def _controls_schema() -> dict[str, Any]:
    """``controls:``: references the shipped controls catalogue knows, as ``framework:id``."""
    catalogue = control_catalogue()
    frameworks = ", ".join(catalogue.frameworks)
    return {
        "type": "array",
        "uniqueItems": True,
        "description": f"Framework controls this rule implements, as framework:id ({frameworks}); "
        "an environment repeating the rule replaces the list (an empty list: this environment's "
        "rule does not implement them). engram-audit controls lists them.",
        "items": {"enum": sorted(catalogue.controls)},
    }


def _remediation_params_schema() -> dict[str, Any]:
    """``remediation_params:``: the values only a person can supply to a fix, by fact name."""
    return {
        "type": "object",
        "additionalProperties": False,
        "description": "Values only a person can supply to the rule's fix; a fix naming one the "
        "policy does not set asks for it as a required shell variable",
        "properties": {
            name: {
                "type": "string",
                "minLength": 1,
                "description": f"{FACTS[name].description} (else ${FACTS[name].variable})",
            }
            for name in sorted(PERSON_FACTS)
        },
    }


def build_policy_schema() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    per_check = []
    for entry in CATALOGUE:
        params = _partial_params_schema(entry.params_model.model_json_schema(), defs)
        params["description"] = f"Params of {entry.id}"
        per_check.append(
            {
                "if": {"required": ["check"], "properties": {"check": {"const": entry.id}}},
                "then": {"properties": {"params": params}},
            }
        )
    rule = {
        "type": "object",
        "additionalProperties": False,
        "required": ["id"],
        "properties": {
            "id": {
                "type": "string",
                "pattern": RULE_ID_PATTERN,
                "description": "Stable rule id; merge key",
            },
            "check": {
                "enum": [entry.id for entry in CATALOGUE],
                "description": "Check catalogue id",
            },
            "severity": {"enum": [s.value for s in SEVERITIES_ASCENDING]},
            "title": {"type": "string", "minLength": 1},
            "rationale": {"type": "string"},
            "remediation": {"type": "string"},
            "params": {"type": "object"},
            "remediation_params": _remediation_params_schema(),
            "enabled": {"type": "boolean"},
            "controls": _controls_schema(),
        },
        "allOf": per_check,
    }
    defs["rule"] = rule
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_BASE_URI + POLICY_SCHEMA,
        "title": "engram-audit policy",
        "description": "One environment's policy, or a base file that environments extend.",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "engram-audit/v1"},
            "environment": {"type": "string", "pattern": "^[a-z][a-z0-9_-]*$"},
            "description": {"type": "string"},
            "extends": {
                "oneOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "string"}, "minItems": 1},
                ],
                "description": "Base file(s), relative to this file; rules merge by id",
            },
            "scope": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "database": {"type": "string", "minLength": 1},
                    "schemas": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "exclude_tables": {"type": "array", "items": {"type": "string"}},
                },
            },
            "rules": {"type": "array", "items": {"$ref": "#/$defs/rule"}},
        },
        "$defs": defs,
    }


def build_snapshot_schema() -> dict[str, Any]:
    schema = Snapshot.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_BASE_URI + SNAPSHOT_SCHEMA,
        **schema,
    }


def build_inventory_schema() -> dict[str, Any]:
    schema = Inventory.model_json_schema(by_alias=True)
    schema["properties"]["environments"]["propertyNames"] = {"pattern": ENVIRONMENT_PATTERN}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_BASE_URI + INVENTORY_SCHEMA,
        "title": "engram-audit inventory",
        "description": "An estate's environments and what to audit in each (engram-audit.yaml).",
        **{key: value for key, value in schema.items() if key != "title"},
    }


def build_report_schema() -> dict[str, Any]:
    """The JSON report as ``-o json:PATH`` writes it: the Report model plus the derived gate."""
    schema = Report.model_json_schema()
    schema["properties"]["gate"] = {
        "type": "object",
        "description": "Failures that fail the gate at fail_on, and those reported below it",
        "additionalProperties": False,
        "required": ["fail_on", "gating_failures", "below_gate_failures"],
        "properties": {
            "fail_on": {"enum": [s.value for s in SEVERITIES_ASCENDING]},
            "gating_failures": {"type": "integer", "minimum": 0},
            "below_gate_failures": {"type": "integer", "minimum": 0},
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_BASE_URI + REPORT_SCHEMA,
        **{key: value for key, value in schema.items() if key != "title"},
        "title": "engram-audit JSON report",
    }


GENERATORS = {
    REPORT_SCHEMA: build_report_schema,
    POLICY_SCHEMA: build_policy_schema,
    SNAPSHOT_SCHEMA: build_snapshot_schema,
    INVENTORY_SCHEMA: build_inventory_schema,
}


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
