"""Reading and writing snapshot files; a malformed snapshot is an input error with its location."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from engram_audit.errors import InputError, Problem
from engram_audit.inputs.yaml_source import load_document
from engram_audit.model import Snapshot


def load_snapshot(path: Path) -> Snapshot:
    document = load_document(path)
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
    # A live snapshot has no origin: it is written as before 1.2, without the key.
    exclude = {"origin"} if snapshot.origin is None else None
    document = snapshot.model_dump(mode="json", exclude=exclude)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
