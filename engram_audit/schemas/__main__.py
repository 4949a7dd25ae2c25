"""Regenerate the shipped schemas: ``python -m engram_audit.schemas``."""

from pathlib import Path

from engram_audit.schemas.generate import GENERATORS, render

here = Path(__file__).parent
for name, build in GENERATORS.items():
    (here / name).write_text(render(build()), encoding="utf-8")
    print(f"wrote {here / name}")
