"""Reading ``engram-audit.yaml``: the schema first (every problem located), then the model."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from engram_audit.errors import InputError, Problem
from engram_audit.inputs.yaml_source import load_document, schema_problems
from engram_audit.model.inventory import INVENTORY_FILE, Inventory
from engram_audit.schemas import INVENTORY_SCHEMA, shipped


def find_inventory(explicit: Path | None) -> Path | None:
    """``--config FILE`` when given, else ``./engram-audit.yaml`` when present."""
    if explicit is not None:
        return explicit
    local = Path(INVENTORY_FILE)
    return local if local.is_file() else None


def load_inventory(path: Path, display: str | None = None) -> Inventory:
    document = load_document(path, display)
    problems = schema_problems(document, shipped(INVENTORY_SCHEMA))
    if problems:
        raise InputError(problems)
    try:
        return Inventory.model_validate(document.data)
    except ValidationError as error:  # the schema is generated from the model: a backstop
        first = error.errors()[0]
        key_path = tuple(first["loc"])
        line, column = document.position(key_path)
        raise InputError(
            [Problem(document.path, line, column, ".".join(map(str, key_path)), first["msg"])]
        ) from None
