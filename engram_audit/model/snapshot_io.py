"""Reading and writing snapshot files; a malformed snapshot is an input error with its location."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from engram_audit.errors import InputError, Problem
from engram_audit.inputs.files import MAX_JSON_BYTES
from engram_audit.inputs.yaml_source import load_document
from engram_audit.model import Snapshot


def load_snapshot(path: Path) -> Snapshot:
    document = load_document(path, max_bytes=MAX_JSON_BYTES)
    if not isinstance(document.data, dict):
        raise InputError([document.problem((), "a snapshot must be a JSON object")])
    try:
        return Snapshot.model_validate(document.data)
    except ValidationError as error:
        problems: list[Problem] = []
        for detail in error.errors():
            key_path = tuple(detail["loc"])
            problems.append(document.problem(key_path, f"invalid snapshot: {detail['msg']}"))
        raise InputError(problems) from None


def dump_snapshot(snapshot: Snapshot) -> str:
    return json.dumps(snapshot.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
