"""Text from audited systems is data: it must not steer a terminal or a CI runner.

Two layers, both pure:
- ``escape_value`` for one field shown inside a line (console, ``diff``): every control
  character, including newlines, becomes a visible escape, so a value keeps to its line.
- ``terminal_safe`` for a whole block about to reach stdout/stderr: control characters other
  than newline and tab become ``\\u00XX`` (a valid escape inside a JSON string too, so JSON
  printed to a terminal still parses to the same value); a line that would begin, after
  whitespace, with a GitHub Actions workflow command (``::``) and any Azure Pipelines logging
  command (``##vso[``) are neutralised the same way.

Escaped: C0 and C1 controls, DEL, line/paragraph separators, and the bidirectional controls
that can make text display in another order than it is read ("Trojan Source", CVE-2021-42574).
"""

from __future__ import annotations

import re

_CONTROL = "\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff"
_ANY_CONTROL = re.compile(f"[{_CONTROL}]")
_CONTROL_BUT_LINES = re.compile(
    f"[{_CONTROL.replace(chr(0) + '-' + chr(0x1F), '')}\x00-\x08\x0b-\x1f]"
)
_SGR = re.compile(r"\x1b\[[0-9;]*m")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_LINE_COMMAND = re.compile(r"^([ \t]*)::", re.MULTILINE)
_VSO_COMMAND = re.compile(r"##vso\[", re.IGNORECASE)


def _unicode_escape(character: str) -> str:
    return f"\\u{ord(character):04x}"


def escape_value(text: str) -> str:
    """One field for one line: no control character survives, newlines included."""
    escaped = _ANY_CONTROL.sub(lambda m: _SHORT.get(m[0]) or _unicode_escape(m[0]), text)
    return neutralise_commands(escaped)


def neutralise_commands(text: str) -> str:
    text = _LINE_COMMAND.sub(lambda m: f"{m[1]}\\u003a:", text)
    return _VSO_COMMAND.sub(lambda m: f"{m[0][:-1]}\\u005b", text)


def terminal_safe(text: str, *, allow_colour: bool = False) -> str:
    """A block for stdout/stderr; ``allow_colour`` keeps SGR colour codes the console added."""
    if allow_colour:
        pieces = _SGR.split(text)
        codes = _SGR.findall(text)
        safe = [_CONTROL_BUT_LINES.sub(lambda m: _unicode_escape(m[0]), p) for p in pieces]
        text = "".join(p + c for p, c in zip(safe, [*codes, ""], strict=True))
    else:
        text = _CONTROL_BUT_LINES.sub(lambda m: _unicode_escape(m[0]), text)
    return neutralise_commands(text)
