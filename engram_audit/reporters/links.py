"""Web links from a finding to the policy line that declared it, at the audited commit.

Built only from the run's context (``RunContext``: the CI system's own variables), never from
audited text, and only for a relative path inside the repository:

- GitHub: ``{repository_url}/blob/{commit}/{path}#L{line}``.
- Azure Repos (Azure Pipelines with an Azure Repos Git repository): ``{repository_url}?path=/{path}
  &version=GC{commit}&line={line}&lineEnd={line + 1}&lineStartColumn=1&lineEndColumn=1
  &lineStyle=plain&_a=contents``. ``GC`` names a commit as ``GB`` names a branch; the line
  parameters are those Azure Repos' file view writes when a line is selected and its link
  copied, as in links Microsoft's own sources carry (dotnet/razor
  CompletionTriggerAndCommitCharacters.cs: ``...?path=...&version=GBdevelop&line=855&lineEnd=855
  &lineStartColumn=9&lineEndColumn=49&lineStyle=plain&_a=contents``) and as Microsoft's Omex
  log tagger builds them (``?path={1}&version=GC{0}&line={2}``).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from engram_audit.model.policy import SourceLocation
from engram_audit.model.report import RunContext

_NOT_IN_REPOSITORY = ("/", "builtin-policies/", "../")


def _repository_url(context: RunContext) -> str | None:
    if context.repository_url:
        return context.repository_url
    # Reports written before 1.3 carry the GitHub server and repository only.
    if context.ci == "github-actions" and context.server_url and context.repository:
        return f"{context.server_url}/{context.repository}"
    return None


def policy_line_url(location: SourceLocation, context: RunContext | None) -> str | None:
    """The policy line at the audited commit on the repository's web host; None when the run's
    context does not say where that is."""
    if context is None or not context.commit or location.path.startswith(_NOT_IN_REPOSITORY):
        return None
    base = _repository_url(context)
    if base is None:
        return None
    path, commit = location.path.replace("\\", "/"), context.commit
    if context.ci == "github-actions":
        return f"{base}/blob/{quote(commit, safe='')}/{quote(path)}#L{location.line}"
    if context.ci == "azure-pipelines":
        query = urlencode(
            {
                "path": "/" + path,
                "version": "GC" + commit,
                "line": location.line,
                "lineEnd": location.line + 1,
                "lineStartColumn": 1,
                "lineEndColumn": 1,
                "lineStyle": "plain",
                "_a": "contents",
            },
            quote_via=quote,
            safe="/",
        )
        return f"{base}?{query}"
    return None
