"""The README documents what the code does: its catalogue and commands are the real ones."""

from __future__ import annotations

import re

from engram_audit.cli.policy import catalogue_markdown
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_catalogue_matches_the_code() -> None:
    block = re.search(r"<!-- catalogue:start -->\n(.*?)<!-- catalogue:end -->", README, re.S)
    assert block is not None, "README lost its catalogue markers"
    assert block.group(1) == catalogue_markdown(), "run: engram-audit checks --format markdown"


def test_readme_starts_with_the_two_commands() -> None:
    first_block = README.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split()[0] for line in first_block.splitlines() if line.strip()]
    assert commands == ["scripts/demo", "scripts/test"]
    for command in commands:
        assert (ROOT / command).is_file()
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_every_documented_exit_code_and_format_exists() -> None:
    from engram_audit.gate.exit_codes import ExitCode
    from engram_audit.reporters import FORMATS

    for code in ExitCode:
        assert f"| {int(code)} |" in README
    for name in FORMATS:
        assert f"| `{name}` |" in README
