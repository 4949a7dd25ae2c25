"""Output formats: a closed registry of pure ``render(report) -> str`` functions.

Adding a format is one module plus one line here plus a golden file (a test fails without it).
"""

from __future__ import annotations

from collections.abc import Callable

from engram_audit.model import Report
from engram_audit.reporters import console, html, json_report, junit, markdown, sarif

Renderer = Callable[[Report], str]

ManyRenderer = Callable[[list[Report]], str]

FORMATS: dict[str, Renderer] = {
    "console": console.render,
    "html": html.render,
    "json": json_report.render,
    "junit": junit.render,
    "markdown": markdown.render,
    "sarif": sarif.render,
}

# Several environments in one output (check --all / --env A --env B).
MANY_FORMATS: dict[str, ManyRenderer] = {
    "console": console.render_many,
    "html": html.render_many,
    "json": json_report.render_many,
    "junit": junit.render_many,
    "markdown": markdown.render_many,
    "sarif": sarif.render_runs,
}

__all__ = ["FORMATS", "MANY_FORMATS", "ManyRenderer", "Renderer"]
