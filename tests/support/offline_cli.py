"""``engram-audit`` as CI steps call it, with live collection replaced by a bundled snapshot.

Only what would reach Azure or PostgreSQL is replaced: ``check`` without ``--snapshot`` evaluates
``$ENGRAM_AUDIT_TEST_SNAPSHOT`` instead of collecting (``--save-snapshot FILE`` receives a copy of
it), and ``collect --output FILE`` copies it. The live-target flags and their
``ENGRAM_AUDIT_*`` variables are dropped; every other argument and command reaches the real CLI
unchanged, so a recipe's wiring (flags, files, exit codes) is what is tested.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from engram_audit.cli import run
from engram_audit.cli.azure_options import azure_options
from engram_audit.cli.postgres_options import postgres_options

SNAPSHOT_VARIABLE = "ENGRAM_AUDIT_TEST_SNAPSHOT"
ROOT = Path(__file__).parents[2]


def _live_options() -> list[click.Option]:
    @click.command()
    @azure_options
    @postgres_options
    def probe(**_: object) -> None: ...

    return [p for p in probe.params if isinstance(p, click.Option)]


def _without_live_targets(args: Sequence[str]) -> tuple[list[str], Path | None]:
    """The arguments without live-target flags; the --save-snapshot path, if any, apart."""
    takes_value = {}
    for option in _live_options():
        for name in option.opts:
            takes_value[name] = not option.is_flag
    kept: list[str] = []
    save: Path | None = None
    index = 0
    while index < len(args):
        arg = args[index]
        name, has_equals, _ = arg.partition("=")
        if name == "--save-snapshot":
            save = Path(args[index + 1] if not has_equals else arg.split("=", 1)[1])
            index += 1 if has_equals else 2
            continue
        if name in takes_value:
            index += 1 if has_equals or not takes_value[name] else 2
            continue
        kept.append(arg)
        index += 1
    return kept, save


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    snapshot = os.environ.get(SNAPSHOT_VARIABLE)
    live = args[:1] == ["collect"] or (args[:1] == ["check"] and "--snapshot" not in args)
    if not live or not snapshot:
        return run(args)
    for option in _live_options():
        for variable in [option.envvar] if isinstance(option.envvar, str) else option.envvar or []:
            os.environ.pop(variable, None)
    kept, save = _without_live_targets(args[1:])
    if args[0] == "collect":
        output = kept[kept.index("--output") + 1]
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(snapshot, output)
        print(f"wrote {output} (test stand-in for live collection)")
        return 0
    code = run(["check", *kept, "--snapshot", snapshot])
    if save is not None and code != 2:  # exit 2: invalid input, nothing was collected
        save.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(snapshot, save)
    return code


def install(bin_dir: Path) -> Path:
    """Write an ``engram-audit`` executable into ``bin_dir`` that runs :func:`main`."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    program = bin_dir / "engram-audit"
    program.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.support.offline_cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n",
        encoding="utf-8",
    )
    program.chmod(program.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return program
