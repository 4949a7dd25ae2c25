"""YAML/JSON documents that remember where every key came from, and schema checks that say so.

Every input file (policies, waivers, snapshots, reports) goes through ``engram_audit.inputs``
so that each problem is reported as ``file:line:column: [key.path] message`` — all problems at
once, never a traceback, never a hang.

YAML is read in two passes. The first walks the parser's events (an iterative state machine,
no recursion) and refuses, each at its line, what would be too expensive to build: nesting
deeper than ``MAX_DEPTH`` and more than ``MAX_VALUES`` values once aliases are expanded (a
390-byte "billion laughs" file expands to 10^9 values). Explicit tags (``!foo``, ``!!binary``)
are refused too: no input of ours needs one and they build objects that are not plain data.
Only then is the document built, with integers bounded in length and NaN/Infinity refused.
"""

from __future__ import annotations

import difflib
import math
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    NodeEvent,
    ScalarEvent,
)

from engram_audit.errors import InputError, Problem
from engram_audit.inputs.files import MAX_YAML_BYTES, read_input

# Deep enough for any policy or snapshot (ARM resources nest about 8 levels), shallow enough
# that no recursive consumer (the YAML composer, jsonschema, pydantic, drift) comes near
# Python's recursion limit.
MAX_DEPTH = 64
# Values (scalars and collections) after alias expansion: a policy has about a thousand.
MAX_VALUES = 200_000
# Digits of an integer: Python refuses to print ints over 4,300 digits, and no setting needs 20.
MAX_INT_DIGITS = 100
# JSON documents are also parsed as YAML to find the line of a problem, up to this size.
MAX_LOCATE_CHARS = 2 << 20

_SURROGATE = re.compile("[\ud800-\udfff]")

KeyPath = tuple[str | int, ...]


def format_key_path(path: Sequence[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class _BoundedConstructor(RoundTripConstructor):
    """Builds plain data, refusing (at the value's line) what no input of ours can mean.

    Unquoted dates stay text: ruamel raises a bare ValueError (no line) on ``2025-02-30``, so
    whoever needs a date (waiver expiry) parses it and reports a located problem.
    """

    def construct_yaml_int(self, node: Any) -> Any:
        digits = sum(character.isalnum() for character in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise ConstructorError(
                problem=f"integer with more than {MAX_INT_DIGITS} digits",
                problem_mark=node.start_mark,
            )
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node: Any) -> Any:
        value = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise ConstructorError(
                problem=f"{node.value!r} is not a finite number (NaN and Infinity are refused)",
                problem_mark=node.start_mark,
            )
        return value


_BoundedConstructor.add_constructor(
    "tag:yaml.org,2002:timestamp", _BoundedConstructor.construct_yaml_str
)
_BoundedConstructor.add_constructor("tag:yaml.org,2002:int", _BoundedConstructor.construct_yaml_int)
_BoundedConstructor.add_constructor(
    "tag:yaml.org,2002:float", _BoundedConstructor.construct_yaml_float
)


def _plain(node: Any) -> Any:
    """ruamel's commented containers and scalar subclasses as plain JSON-like Python values.

    Recursive, and safe to be: the event pass bounded the depth and the expanded size first.
    """
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
    return str(node)


@dataclass(frozen=True)
class SourceDocument:
    """Plain data (``data``) and where each value was written.

    ``tree`` is ruamel's round-trip tree with line/column of every key; a JSON document keeps
    its ``text`` instead and is parsed as YAML only when a problem needs locating.
    """

    path: str
    data: Any
    tree: Any = None
    text: str | None = None

    @cached_property
    def _located(self) -> Any:
        if self.tree is not None or self.text is None or len(self.text) > MAX_LOCATE_CHARS:
            return self.tree
        try:
            return parse_yaml(self.text, self.path).tree
        except InputError:
            return None  # valid JSON that YAML cannot read (e.g. a tab as indentation)

    def position(self, key_path: Sequence[str | int], *, of_key: bool = False) -> tuple[int, int]:
        """1-based line and column of the value at ``key_path`` (or of its key), best effort."""
        node = self._located
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


def _at(shown: str, event: Any, message: str) -> InputError:
    mark = event.start_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return InputError([Problem(shown, line, column, "", message)])


def _check_events(parser: YAML, text: str, shown: str) -> None:
    """Refuse deep nesting, alias bombs, tags and lone surrogates before building anything.

    Each open collection counts its values and its height; an anchor remembers both for its
    node, and an alias adds them again, so the expanded size is known without expanding.
    """
    open_collections: list[list[Any]] = []  # [values, height, anchor]
    anchored: dict[str, tuple[int, int]] = {}
    expanded = 0

    def add(values: int, height: int) -> None:
        if open_collections:
            parent = open_collections[-1]
            parent[0] += values
            parent[1] = max(parent[1], height + 1)

    for event in parser.parse(text):
        tag = getattr(event, "tag", None) if isinstance(event, NodeEvent) else None
        if tag is not None:
            raise _at(shown, event, f"invalid YAML: tag {tag} is not supported here")
        if isinstance(event, CollectionStartEvent):
            open_collections.append([1, 0, event.anchor])
            expanded += 1
            if len(open_collections) > MAX_DEPTH:
                raise _at(shown, event, f"nesting deeper than {MAX_DEPTH} levels")
        elif isinstance(event, CollectionEndEvent):
            values, height, anchor = open_collections.pop()
            if anchor is not None:
                anchored[anchor] = (values, height)
            add(values, height)
        elif isinstance(event, ScalarEvent):
            if _SURROGATE.search(event.value):
                raise _at(shown, event, "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff)")
            expanded += 1
            if event.anchor is not None:
                anchored[event.anchor] = (1, 0)
            add(1, 0)
        elif isinstance(event, AliasEvent):
            values, height = anchored.get(event.anchor, (1, 0))  # unknown: the composer says so
            expanded += values
            if len(open_collections) + height > MAX_DEPTH:
                raise _at(
                    shown,
                    event,
                    f"nesting deeper than {MAX_DEPTH} levels (through *{event.anchor})",
                )
            add(values, height)
        if expanded > MAX_VALUES:
            raise _at(
                shown,
                event,
                f"more than {MAX_VALUES:,} values once YAML aliases are expanded (an alias bomb?)",
            )


def _yaml_error(shown: str, error: YAMLError) -> InputError:
    if isinstance(error, MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        detail = " ".join(p for p in (error.context, error.problem) if p) or "invalid YAML"
        return InputError([Problem(shown, line, column, "", f"invalid YAML: {detail}")])
    return InputError([Problem(shown, 1, 1, "", f"invalid YAML: {error}")])


def parse_yaml(text: str, shown: str) -> SourceDocument:
    """YAML text as a located document; every way it can be wrong is a located InputError."""
    parser = YAML(typ="rt")
    parser.Constructor = _BoundedConstructor
    parser.allow_duplicate_keys = False
    try:
        with warnings.catch_warnings():
            # A redefined anchor is legal YAML; ruamel's warning would only reach stderr.
            warnings.simplefilter("ignore", ReusedAnchorWarning)
            _check_events(parser, text, shown)
            tree = parser.load(text)
    except YAMLError as error:
        raise _yaml_error(shown, error) from None
    return SourceDocument(path=shown, tree=tree, data=_plain(tree))


def load_document(path: Path, display: str | None = None) -> SourceDocument:
    """Parse a YAML (or JSON) file keeping positions; every problem is an InputError with its line."""
    shown = display or str(path)
    return parse_yaml(read_input(path, shown, max_bytes=MAX_YAML_BYTES), shown)


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
