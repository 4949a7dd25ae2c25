"""JSON documents (snapshots, reports): strict reading, and writing only what reads back.

Read with the standard library, which is fast, and stricter than its defaults:
- ``NaN``, ``Infinity`` and numbers that overflow to infinity (``1e999``) are refused: they
  are not JSON (RFC 8259 §6) and no snapshot or report value can be one;
- a key repeated in one object is refused: which value a reader keeps is undefined;
- integers longer than ``MAX_INT_DIGITS`` digits, nesting deeper than ``MAX_DEPTH`` and
  strings holding a lone UTF-16 surrogate (``"\\ud800"``, valid JSON syntax but no character,
  and fatal to every output) are refused.
Each refusal names its line and column. A document that parses but fails validation is parsed
as YAML too, only then, to find the line of each problem (``SourceDocument.position``).

``dump_json`` writes the same dialect: never NaN or Infinity (written as null, unknown, as
pydantic does), DEL and C1 control characters escaped, and a lone surrogate replaced by
U+FFFD, so that what the tool writes it can read back and locate errors in.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engram_audit.errors import InputError, Problem
from engram_audit.inputs.files import MAX_JSON_BYTES, read_input
from engram_audit.inputs.yaml_source import (
    MAX_DEPTH,
    MAX_INT_DIGITS,
    KeyPath,
    SourceDocument,
    format_key_path,
    parse_yaml,
)

_SURROGATE = re.compile("[\ud800-\udfff]")
# A high surrogate escape not followed by a low one, or a low one not preceded by a high one.
_LONE_SURROGATE_ESCAPE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
# A JSON string, or one of the structural characters that open and close containers.
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
# Characters JSON allows raw but YAML (hence error locating) refuses or reads as line breaks.
_UNREADABLE_RAW = re.compile("[\x7f-\x9f\u2028\u2029\ufffe\uffff]")


class _Refused(ValueError):
    def __init__(self, message: str, token: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.token = token


def _refuse_constant(token: str) -> Any:
    raise _Refused(f"{token} is not a JSON number (NaN and Infinity are refused)", token)


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise _Refused(f"{token} is too large for a number", token)
    return value


def _bounded_int(token: str) -> int:
    if len(token.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"integer with more than {MAX_INT_DIGITS} digits", token)
    return int(token)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"duplicate key {key!r}")
            seen.add(key)
    return document


def _line_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _outside_strings(text: str, token: str) -> int | None:
    """Offset of the first ``token`` that is not inside a JSON string."""
    pattern = re.compile(r'"(?:[^"\\]|\\.)*"|(?<![\w.+-])' + re.escape(token) + r"(?![\w.])")
    for match in pattern.finditer(text):
        if not match.group().startswith('"'):
            return match.start()
    return None


def _too_deep_at(text: str) -> int:
    """Offset of the bracket that opens level ``MAX_DEPTH + 1``."""
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        bracket = match.group()
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return match.start()
        elif bracket in "]}":
            depth -= 1
    return 0


def _containers(data: Any) -> Iterator[tuple[KeyPath, Any, int]]:
    """Every container with its key path and depth, iteratively (no recursion limit)."""
    stack: list[tuple[KeyPath, Any, int]] = [((), data, 1)]
    while stack:
        path, value, depth = stack.pop()
        yield path, value, depth
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(item, dict | list):
                stack.append(((*path, key), item, depth + 1))


def _lone_surrogate(data: Any) -> KeyPath | None:
    if isinstance(data, str):
        return () if _SURROGATE.search(data) else None
    if not isinstance(data, dict | list):
        return None
    for path, value, _ in _containers(data):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and _SURROGATE.search(key):
                return path
            if isinstance(item, str) and _SURROGATE.search(item):
                return (*path, key)
    return None


def _depth_exceeded(data: Any) -> bool:
    if not isinstance(data, dict | list):
        return False
    return any(depth > MAX_DEPTH for _, _, depth in _containers(data))


def parse_json(text: str, shown: str) -> SourceDocument:
    """JSON text as a document that can locate problems; refusals are located InputErrors."""

    def refuse(offset: int, message: str) -> InputError:
        line, column = _line_column(text, offset)
        return InputError([Problem(shown, line, column, "", message)])

    try:
        data = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except json.JSONDecodeError as error:
        raise InputError(
            [Problem(shown, error.lineno, error.colno, "", f"not valid JSON: {error.msg}")]
        ) from None
    except _Refused as refused:
        if refused.token is not None:
            raise refuse(_outside_strings(text, refused.token) or 0, refused.message) from None
        document = SourceDocument(path=shown, data=None, text=text)
        line, column = _duplicate_position(document)
        raise InputError([Problem(shown, line, column, "", refused.message)]) from None
    except RecursionError:
        raise refuse(_too_deep_at(text), f"nesting deeper than {MAX_DEPTH} levels") from None
    if _depth_exceeded(data):
        raise refuse(_too_deep_at(text), f"nesting deeper than {MAX_DEPTH} levels")
    escape = _LONE_SURROGATE_ESCAPE.search(text)
    if escape is not None:
        where = _lone_surrogate(data)
        if where is not None:
            line, column = _line_column(text, escape.start())
            message = "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff)"
            raise InputError([Problem(shown, line, column, format_key_path(where), message)])
    return SourceDocument(path=shown, data=data, text=text)


def _duplicate_position(document: SourceDocument) -> tuple[int, int]:
    """The YAML parser refuses duplicate keys with a position; ask it where."""
    if document.text is None:
        return 1, 1
    try:
        parse_yaml(document.text, document.path)
    except InputError as error:
        first = error.problems[0]
        if "duplicate key" in first.message:
            return first.line, first.column
    return 1, 1


def load_json_document(path: Path, display: str | None = None) -> SourceDocument:
    """Read and parse a JSON input file (snapshot, report) within ``MAX_JSON_BYTES``."""
    shown = display or str(path)
    return parse_json(read_input(path, shown, max_bytes=MAX_JSON_BYTES), shown)


def validation_problems(
    document: SourceDocument, errors: list[tuple[KeyPath, str]], prefix: str, *, limit: int = 50
) -> list[Problem]:
    """Located problems for validation errors (key path, message), at most ``limit`` of them."""
    problems = [document.problem(path, f"{prefix}: {message}") for path, message in errors[:limit]]
    if len(errors) > limit:
        problems.append(
            Problem(document.path, 1, 1, "", f"{prefix}: {len(errors) - limit} more problem(s)")
        )
    return problems


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def dump_json(value: Any) -> str:
    """JSON that ``parse_json`` reads back: indented, UTF-8, no NaN, DEL/C1 escaped."""
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)
    except ValueError:  # NaN or Infinity somewhere (an ARM property, say): null, i.e. unknown
        text = json.dumps(_finite(value), indent=2, ensure_ascii=False, allow_nan=False)
    # Outside strings JSON has only ASCII, so every such character is inside a string and
    # its \\u escape means the same character. A lone surrogate is no character at all (a
    # hostile server can send one as "\\ud800"): it is written as U+FFFD, the replacement
    # character, since the reader refuses it.
    text = _SURROGATE.sub("\ufffd", text)
    return _UNREADABLE_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"
