"""Who ran the audit and where, from the variables CI systems document for every job.

- GitHub Actions (docs.github.com, "Variables reference"): GITHUB_ACTIONS, GITHUB_SERVER_URL,
  GITHUB_REPOSITORY, GITHUB_SHA, GITHUB_REF, GITHUB_RUN_ID, GITHUB_ACTOR.
- Azure Pipelines (learn.microsoft.com, "Use predefined variables"; MicrosoftDocs/
  azure-devops-docs docs/pipelines/build/includes/variables-hosted.md): TF_BUILD,
  BUILD_REPOSITORY_NAME, BUILD_SOURCEVERSION, BUILD_SOURCEBRANCH, SYSTEM_COLLECTIONURI,
  SYSTEM_TEAMPROJECT, BUILD_BUILDID, BUILD_REQUESTEDFOR, and BUILD_REPOSITORY_PROVIDER with
  BUILD_REPOSITORY_URI ("The URL for the triggering repository", e.g.
  https://dev.azure.com/fabrikamfiber/_git/Scripts, for provider ``TfsGit``, an Azure Repos Git
  repository). For Azure Repos the URI can carry a user name (``https://org@dev.azure.com/...``):
  credentials are dropped before it is recorded.
- GitLab CI (docs.gitlab.com, "Predefined CI/CD variables"): GITLAB_CI, CI_SERVER_URL,
  CI_PROJECT_PATH, CI_COMMIT_SHA, CI_COMMIT_REF_NAME, CI_JOB_URL, GITLAB_USER_LOGIN.
Outside CI nothing is recorded, so local runs stay byte-identical for the same snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from engram_audit.model.report import RunContext


def _web_address(uri: str | None) -> str | None:
    """An https repository address with any user name or password removed; None for anything
    else (an ssh remote, a file path, a malformed value)."""
    if not uri:
        return None
    try:
        parts = urlsplit(uri.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        return None
    host = parts.hostname + (f":{port}" if port else "")
    return urlunsplit(("https", host, parts.path.rstrip("/"), "", ""))


def run_context(environ: Mapping[str, str]) -> RunContext | None:
    get = environ.get
    if get("GITHUB_ACTIONS") == "true":
        server, repository, run_id = (
            get("GITHUB_SERVER_URL"),
            get("GITHUB_REPOSITORY"),
            get("GITHUB_RUN_ID"),
        )
        return RunContext(
            ci="github-actions",
            repository=repository,
            commit=get("GITHUB_SHA"),
            ref=get("GITHUB_REF"),
            run_url=f"{server}/{repository}/actions/runs/{run_id}"
            if server and repository and run_id
            else None,
            actor=get("GITHUB_ACTOR"),
            server_url=server,
            repository_url=_web_address(f"{server}/{repository}")
            if server and repository
            else None,
        )
    if (get("TF_BUILD") or "").lower() == "true":
        collection, project, build = (
            get("SYSTEM_COLLECTIONURI"),
            get("SYSTEM_TEAMPROJECT"),
            get("BUILD_BUILDID"),
        )
        return RunContext(
            ci="azure-pipelines",
            repository=get("BUILD_REPOSITORY_NAME"),
            commit=get("BUILD_SOURCEVERSION"),
            ref=get("BUILD_SOURCEBRANCH"),
            run_url=f"{collection}{project}/_build/results?buildId={build}"
            if collection and project and build
            else None,
            actor=get("BUILD_REQUESTEDFOR"),
            server_url=collection,
            # Only Azure Repos Git is linked the Azure Repos way; a GitHub repository built by
            # Azure Pipelines has provider GitHub and is not linked.
            repository_url=_web_address(get("BUILD_REPOSITORY_URI"))
            if get("BUILD_REPOSITORY_PROVIDER") == "TfsGit"
            else None,
        )
    if get("GITLAB_CI") == "true":
        return RunContext(
            ci="gitlab-ci",
            repository=get("CI_PROJECT_PATH"),
            commit=get("CI_COMMIT_SHA"),
            ref=get("CI_COMMIT_REF_NAME"),
            run_url=get("CI_JOB_URL"),
            actor=get("GITLAB_USER_LOGIN"),
            server_url=get("CI_SERVER_URL"),
        )
    return None
