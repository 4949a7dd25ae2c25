"""Shell completion callbacks: environments and rule/check ids come from the policies in use.

Enable with ``eval "$(_ENGRAM_AUDIT_COMPLETE=bash_source engram-audit)"`` (zsh_source,
fish_source); click calls these with what is typed so far. They never raise: a shell must not
print a traceback on TAB.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
from click.shell_completion import CompletionItem

from engram_audit.checks import CATALOGUE
from engram_audit.policy.builtin import default_policy_dir
from engram_audit.policy.environments import environments, rule_ids

log = logging.getLogger(__name__)


def _policy_dir(ctx: click.Context) -> Path:
    given = ctx.params.get("policy_dir")
    return given if isinstance(given, Path) else default_policy_dir()


def complete_environments(
    ctx: click.Context, _: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    try:
        names = environments(_policy_dir(ctx))
    except Exception:  # completion must stay silent, whatever the files hold
        log.debug("no environments to complete", exc_info=True)
        return []
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


def complete_ids(ctx: click.Context, _: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Rule ids (as findings name them) from the policies, then the catalogue's check ids."""
    try:
        rules = rule_ids(_policy_dir(ctx))
    except Exception:  # completion must stay silent, whatever the files hold
        log.debug("no rule ids to complete", exc_info=True)
        rules = []
    wanted = incomplete.casefold()
    items = [CompletionItem(r, help="rule") for r in rules if r.casefold().startswith(wanted)]
    items += [
        CompletionItem(c.id, help=c.summary)
        for c in CATALOGUE
        if c.id.casefold().startswith(wanted)
    ]
    return items
