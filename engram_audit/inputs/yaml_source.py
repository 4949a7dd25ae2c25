"""YAML/JSON documents that remember where every key came from, and schema checks that say so.

Every input file (policies, waivers) goes through here so that each problem is reported as
``file:line:column: [key.path] message`` — all problems at once, never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from engram_audit.errors import InputError, Problem
from engram_audit.inputs.files import MAX_YAML_BYTES, read_input

KeyPath = tuple[str | int, ...]


def format_key_path(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class _DatesAsText(RoundTripConstructor):
    """Unquoted dates stay text: ruamel raises a bare ValueError (no line) on ``2025-02-30``,
    so whoever needs a date (waiver expiry) parses it and reports a located problem."""


_DatesAsText.add_constructor("tag:yaml.org,2002:timestamp", _DatesAsText.construct_yaml_str)


def _plain(node: Any) -> Any:
    """ruamel's commented containers and scalar subclasses as plain JSON-like Python values."""
    if isinstance(node, dict):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


@dataclass(frozen=True)
class SourceDocument:
    path: str
    tree: Any
    data: Any

    def position(self, key_path: Sequence[str | int], *, of_key: bool = False) -> tuple[int, int]:
        """1-based line and column of the value at ``key_path`` (or of its key), best effort."""
        node = self.tree
        line, column = 0, 0
        if isinstance(node, CommentedMap | CommentedSeq):
            line, column = node.lc.line, node.lc.col
        for index, part in enumerate(key_path):
            last = index == len(key_path) - 1
            if isinstance(node, CommentedMap) and part in node:
                line, column = node.lc.key(part) if (of_key and last) else node.lc.value(part)
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                line, column = node.lc.item(part)
                node = node[part]
            else:
                break
        return line + 1, column + 1

    def problem(
        self, key_path: Sequence[str | int], message: str, *, of_key: bool = False
    ) -> Problem:
        line, column = self.position(key_path, of_key=of_key)
        return Problem(self.path, line, column, format_key_path(key_path), message)


def load_document(
    path: Path, display: str | None = None, *, max_bytes: int = MAX_YAML_BYTES
) -> SourceDocument:
    """Parse YAML (or JSON) keeping positions; a syntax error becomes an InputError with its line."""
    shown = display or str(path)
    raw = read_input(path, shown, max_bytes=max_bytes)
    parser = YAML(typ="rt")
    parser.Constructor = _DatesAsText
    parser.allow_duplicate_keys = False
    try:
        tree = parser.load(raw)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        detail = " ".join(p for p in (error.context, error.problem) if p) or "invalid YAML"
        raise InputError([Problem(shown, line, column, "", f"invalid YAML: {detail}")]) from None
    except YAMLError as error:
        raise InputError([Problem(shown, 1, 1, "", f"invalid YAML: {error}")]) from None
    return SourceDocument(path=shown, tree=tree, data=_plain(tree))


def _schema_messages(error: ValidationError) -> Iterator[tuple[KeyPath, str, bool]]:
    path: KeyPath = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = set(schema.get("properties", {}))
        for key in sorted(k for k in error.instance if k not in allowed):
            hint = f"; allowed: {', '.join(sorted(allowed))}" if allowed else ""
            yield (*path, key), f"unknown key {key!r}{hint}", True
        return
    if error.validator in {"oneOf", "anyOf"} and error.context:
        best = min(error.context, key=lambda e: len(list(e.absolute_path)) * -1)
        yield from _schema_messages(best)
        return
    if (
        error.validator == "enum"
        and isinstance(error.validator_value, list)
        and len(error.validator_value) > 8
    ):
        # A 37-item list helps nobody: suggest the closest known values instead.
        choices = [str(value) for value in error.validator_value]
        close = difflib.get_close_matches(str(error.instance), choices, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        yield path, f"unknown value {error.instance!r}{hint}", False
        return
    yield path, error.message, False


def schema_problems(document: SourceDocument, schema: dict[str, Any]) -> list[Problem]:
    validator = Draft202012Validator(schema)
    problems = []
    for error in validator.iter_errors(document.data):
        for key_path, message, of_key in _schema_messages(error):
            problems.append(document.problem(key_path, message, of_key=of_key))
    return problems
