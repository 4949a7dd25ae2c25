"""Reading and writing snapshot files; a malformed snapshot is an input error with its location.

Snapshots are JSON, read with the standard library (``engram_audit.inputs.json_source``):
NaN, Infinity, duplicate keys, lone surrogates and absurd nesting are refused with a line;
a schema problem is located by key path and line. Writing uses the same dialect, so a
snapshot the tool wrote is one it reads back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engram_audit.errors import InputError
from engram_audit.inputs.json_source import dump_json, load_json_document, validation_problems
from engram_audit.inputs.yaml_source import SourceDocument
from engram_audit.model import Snapshot


def load_snapshot(path: Path) -> Snapshot:
    return snapshot_from_document(load_json_document(path))


def snapshot_from_document(document: SourceDocument) -> Snapshot:
    if not isinstance(document.data, dict):
        raise InputError([document.problem((), "a snapshot must be a JSON object")])
    try:
        return Snapshot.model_validate(document.data)
    except ValidationError as error:
        details = [(tuple(detail["loc"]), detail["msg"]) for detail in error.errors()]
        raise InputError(validation_problems(document, details, "invalid snapshot")) from None


def dump_snapshot(snapshot: Snapshot) -> str:
    # A live snapshot has no origin: it is written as before 1.2, without the key; likewise an
    # unsharded run's Azure section has no "shard" (1.3).
    exclude: dict[str, Any] = {}
    if snapshot.origin is None:
        exclude["origin"] = True
    if snapshot.azure is not None and snapshot.azure.shard is None:
        exclude["azure"] = {"shard"}
    return dump_json(snapshot.model_dump(mode="json", exclude=exclude or None))
