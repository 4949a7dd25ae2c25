"""Names chosen by the audited side cannot inject CI workflow commands or terminal escapes.

A database owner can name a table ``x\\n::error ...`` or put ESC/OSC sequences in an index
name; an ARM proxy can do the same with a firewall rule. Each format printed to stdout, and
``diff``, must show such text as data: no line that a GitHub Actions or Azure Pipelines runner
would execute, no control character a terminal would act on, and the JSON still parses to the
exact original value.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from engram_audit.reporters import FORMATS
from tests.conftest import snapshot_data
from tests.support.cli import run_in_process, run_process

HOSTILE = (
    "evil\n::error file=app.py,line=1::forged\n"
    "##vso[task.setvariable variable=GATE]green\r"
    "\x1b]0;pwned\x07\x1b[2J\x1b]8;;https://attacker.example/\x1b\\link\x1b]8;;\x1b\\"
    "\x9b31m\x7f\u202eevil\u2028tail"
)
_RUNNER_COMMAND = re.compile(r"^\s*::|##vso\[", re.IGNORECASE | re.MULTILINE)
_TERMINAL_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _hostile_snapshot(tmp_path: Path) -> Path:
    data: dict[str, Any] = snapshot_data("prod-drifted")
    database = data["postgres"]["databases"][0]
    database["vector_columns"][0]["table"] = HOSTILE
    database["invalid_indexes"][0]["name"] = HOSTILE
    data["azure"]["servers"][0]["firewall_rules"][0]["name"] = HOSTILE
    data["issues"] = [
        {"source": "postgres", "resource": HOSTILE, "part": "statements", "reason": HOSTILE}
    ]
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _assert_inert(text: str) -> None:
    assert not _RUNNER_COMMAND.search(text), [
        line for line in text.splitlines() if _RUNNER_COMMAND.search(line)
    ]
    assert not _TERMINAL_CONTROL.search(text), repr(_TERMINAL_CONTROL.findall(text)[:5])
    assert "\x1b" not in text and "\r" not in text


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_on_stdout_shows_hostile_names_as_inert_text(fmt: str, tmp_path: Path) -> None:
    snapshot = _hostile_snapshot(tmp_path)
    result = run_in_process("check", "--env", "prod", "--snapshot", str(snapshot), "--format", fmt)
    assert result.returncode in (1, 3), result.stderr
    _assert_inert(result.stdout)
    _assert_inert(result.stderr)
    assert "forged" in result.stdout  # shown, as data


def test_json_on_a_terminal_still_parses_to_the_original_value(tmp_path: Path) -> None:
    result = run_in_process(
        "check", "--env", "prod", "--snapshot", str(_hostile_snapshot(tmp_path)), "--format", "json"
    )
    report = json.loads(result.stdout)
    resources = {finding["resource"] for finding in report["findings"]}
    assert any(HOSTILE in resource for resource in resources)


def test_diff_text_and_json_are_inert(tmp_path: Path) -> None:
    clean = tmp_path / "clean.json"
    clean.write_text(json.dumps(snapshot_data("prod-drifted")), encoding="utf-8")
    hostile = _hostile_snapshot(tmp_path)
    for fmt in ("text", "json"):
        result = run_in_process("diff", str(clean), str(hostile), "--format", fmt)
        assert result.returncode == 1, result.stderr
        _assert_inert(result.stdout + result.stderr)
        assert "forged" in result.stdout


def test_a_real_process_prints_no_raw_escape_and_no_workflow_command(tmp_path: Path) -> None:
    result = run_process("check", "--env", "prod", "--snapshot", str(_hostile_snapshot(tmp_path)))
    assert result.returncode in (1, 3)
    _assert_inert(result.stdout + result.stderr)
    assert "\\u001b]0;pwned" in result.stdout  # the escape is visible, not acted on
