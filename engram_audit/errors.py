"""The typed error family. Only the CLI catches these, turning each into a message and an exit code."""

from __future__ import annotations

import re
from dataclasses import dataclass


class EngramAuditError(Exception):
    """Base of every error a user can cause; its message is meant for them, never a traceback."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an input file, located precisely enough to fix without searching."""

    path: str
    line: int
    column: int
    key_path: str
    message: str

    def __str__(self) -> str:
        where = f"{_printable(self.path)}:{self.line}:{self.column}"
        key = f" [{_printable(self.key_path)}]" if self.key_path else ""
        return f"{where}:{key} {_printable(self.message)}"


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _printable(text: str) -> str:
    """Keys and values quoted from an input file are data: a control character in them (an
    escape sequence, a carriage return) is shown escaped, never sent to the terminal."""
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


class InputError(EngramAuditError):
    """Invalid input file (policy, snapshot, waivers): every problem at once, exit 2."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.path, p.line, p.column, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(EngramAuditError):
    """Flags that do not fit together."""
