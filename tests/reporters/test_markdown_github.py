"""The Markdown summary as GitHub renders it (cmark-gfm, GitHub's own Markdown library): tables
keep their columns, fixes are code, rule ids are code, policy lines link to the commit, hostile
text stays text, and a fleet-sized summary fits in a GitHub comment."""

from __future__ import annotations

from html.parser import HTMLParser

import cmarkgfm
import pytest

from engram_audit.cli.context import run_context
from engram_audit.engine import evaluate
from engram_audit.model import ALL_SOURCES, Snapshot
from engram_audit.model.report import RunContext
from engram_audit.policy.loader import load_policy
from engram_audit.reporters import markdown
from tests.conftest import POLICIES, snapshot_data
from tests.golden.sample import sample_report
from tests.reporters.test_console_at_scale import _fleet_report


class _Tables(HTMLParser):
    """Column counts of every table row, code spans, links and any tag a cell should not hold."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[int] = []
        self.tables: list[list[int]] = []
        self.codes: list[str] = []
        self.links: list[str] = []
        self.tags: set[str] = set()
        self._cells = 0
        self._in_code = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._cells = 0
        elif tag in ("td", "th"):
            self._cells += 1
        elif tag == "code":
            self._in_code = True
            self.codes.append("")
        elif tag == "a":
            self.links.append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self.rows.append(self._cells)
            self.tables[-1].append(self._cells)
        elif tag == "code":
            self._in_code = False

    def handle_data(self, data: str) -> None:
        if self._in_code:
            self.codes[-1] += data


def _render(text: str) -> _Tables:
    parser = _Tables()
    parser.feed(cmarkgfm.github_flavored_markdown_to_html(text))
    return parser


def _drifted_prod(context: RunContext | None = None):  # type: ignore[no-untyped-def]
    policy = load_policy(POLICIES / "prod.yaml")
    report = evaluate(policy, Snapshot.model_validate(snapshot_data("prod-drifted")), ALL_SOURCES)
    return report.model_copy(update={"context": context})


def test_tables_keep_their_columns_and_hostile_text_stays_text() -> None:
    parsed = _render(markdown.render(sample_report()))
    assert parsed.tables
    for table in parsed.tables:  # every row of a table as wide as its header
        assert len(set(table)) == 1, table
    assert not parsed.tags & {"b", "strict", "script", "img"}


def test_fixes_and_rule_ids_are_code_spans() -> None:
    report = _drifted_prod()
    parsed = _render(markdown.render(report))
    assert "ZEP-AZ-BACKUP-RETENTION" in parsed.codes
    fixes = [c for c in parsed.codes if c.startswith("az postgres flexible-server")]
    assert fixes, parsed.codes
    assert any("--backup-retention 35" in fix for fix in fixes)


def test_policy_lines_link_to_the_commit_on_github() -> None:
    context = RunContext(
        ci="github-actions",
        repository="engram/estate",
        commit="0123456789abcdef0123456789abcdef01234567",
        server_url="https://github.com",
    )
    links = _render(markdown.render(_drifted_prod(context))).links
    assert any(
        link.startswith(
            "https://github.com/engram/estate/blob/0123456789abcdef0123456789abcdef01234567/"
            "policies/prod.yaml#L"
        )
        for link in links
    ), links
    # Without a run there is nothing to link to; audited text never becomes a web link.
    unlinked = _render(markdown.render(_drifted_prod())).links
    assert [link for link in unlinked if not link.startswith("mailto:")] == []


def test_backticks_in_text_cannot_break_a_code_span() -> None:
    assert markdown.code("run `az login` first") == "``run `az login` first``"
    parsed = _render(markdown.code("a ``b`` c"))
    assert parsed.codes == ["a ``b`` c"]


def test_a_fleet_summary_fits_in_a_github_comment() -> None:
    text = markdown.render(_fleet_report())
    assert len(text) <= markdown.MAX_CHARS
    assert "left out to stay within GitHub's comment size" in text
    assert "### Failures by severity" in text


def test_audited_text_never_becomes_a_web_link() -> None:
    html = cmarkgfm.github_flavored_markdown_to_html(
        markdown.esc("open https://attacker.example/login or www.attacker.example now")
    )
    assert "<a " not in html
    assert "https://attacker.example/login" in html.replace("\\", "")


AZURE_REPOS_COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


def test_policy_lines_link_to_the_commit_on_azure_repos() -> None:
    context = run_context(
        {
            "TF_BUILD": "True",
            "BUILD_REPOSITORY_PROVIDER": "TfsGit",
            # Azure Repos puts the organisation's user name in the URI; it is not kept.
            "BUILD_REPOSITORY_URI": "https://fabrikam@dev.azure.com/fabrikam/Estate/_git/estate",
            "BUILD_SOURCEVERSION": AZURE_REPOS_COMMIT,
        }
    )
    assert context is not None
    assert context.repository_url == "https://dev.azure.com/fabrikam/Estate/_git/estate"
    report = _drifted_prod(context)
    line = next(f.location.line for f in report.findings if f.location is not None)
    links = _render(markdown.render(report)).links
    expected = (
        "https://dev.azure.com/fabrikam/Estate/_git/estate?path=/policies/prod.yaml"
        f"&version=GC{AZURE_REPOS_COMMIT}&line={line}&lineEnd={line + 1}"
        "&lineStartColumn=1&lineEndColumn=1&lineStyle=plain&_a=contents"
    )
    assert expected in links, links
    assert not any("fabrikam@" in link for link in links)


@pytest.mark.parametrize(
    ("provider", "uri"),
    [
        ("GitHub", "https://github.com/engram/estate"),  # Azure Pipelines building a GitHub repo
        ("TfsGit", "git@ssh.dev.azure.com:v3/fabrikam/Estate/estate"),  # not a web address
        ("TfsGit", "javascript:alert(1)"),
        ("TfsGit", ""),
    ],
)
def test_no_azure_repos_link_without_an_azure_repos_web_address(provider: str, uri: str) -> None:
    context = run_context(
        {
            "TF_BUILD": "True",
            "BUILD_REPOSITORY_PROVIDER": provider,
            "BUILD_REPOSITORY_URI": uri,
            "BUILD_SOURCEVERSION": AZURE_REPOS_COMMIT,
        }
    )
    assert context is not None and context.repository_url is None
    links = _render(markdown.render(_drifted_prod(context))).links
    assert [link for link in links if "policies/prod.yaml" in link] == []


def test_github_actions_context_records_the_repository_address() -> None:
    context = run_context(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "engram/estate",
            "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
            "GITHUB_RUN_ID": "42",
        }
    )
    assert context is not None
    assert context.repository_url == "https://github.com/engram/estate"
    assert context.run_url == "https://github.com/engram/estate/actions/runs/42"
