"""Markdown step summary: verdict and totals, failures by severity, errors apart, details folded."""

from __future__ import annotations

import pytest

from engram_audit.model import Report, Status, Summary
from engram_audit.reporters import markdown
from tests.golden.sample import sample_report


def with_findings(report: Report, findings: tuple[object, ...]) -> Report:
    return report.model_copy(update={"findings": findings, "summary": Summary.of(findings)})  # type: ignore[arg-type]


def table_rows(text: str) -> list[list[str]]:
    section = text.split("### Failures by severity", 1)[1].split("\n\n", 2)[1]
    rows = [line for line in section.splitlines() if line.startswith("| ")][2:]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def test_headline_and_totals() -> None:
    text = markdown.render(sample_report())
    assert text.startswith("## engram-audit: prod: INCOMPLETE\n"), (
        "an error makes the run incomplete, as exit 3"
    )
    # The same line, in the same form, as the console report's last line (scripts read it).
    assert (
        "\n10 findings: 5 failed (2 high, 1 medium, 1 low, 1 info) · 1 errors · 1 waived · "
        "1 skipped · 2 passed\n"
    ) in text
    assert "gate: --fail-on low: 4 failure(s) fail the gate, 1 below it are reported only" in text


def test_failures_are_ordered_by_severity_with_expected_and_actual() -> None:
    rows = table_rows(markdown.render(sample_report()))
    assert [row[0] for row in rows] == ["high", "high", "medium", "low", "info"]
    geo = rows[0]
    assert geo[1:] == [
        "`prod.backup.geo_redundant`",
        "`rg-engram-prod/pg-engram-prod`",
        "Enabled → Disabled",
        "unchanged",
    ]


def test_cells_cannot_break_the_table_or_inject_html() -> None:
    text = markdown.render(sample_report())
    vector_row = next(r for r in table_rows(text) if r[1] == "`prod.pg.vector_index`")
    assert vector_row[3].endswith("→ ivfflat \\| none &lt;b&gt;")
    assert "<b>" not in text
    assert "<strict>" not in text
    assert "\x07" not in text


def test_errors_and_collection_issues_are_listed_apart() -> None:
    text = markdown.render(sample_report())
    errors = text.split("### Errors: not evaluated", 1)[1].split("###", 1)[0]
    assert (
        "- parameters not collected: 403 AuthorizationFailed "
        "(rules prod.tls.min\\_version; on rg-engram-prod/pg-engram-prod)"
    ) in errors
    assert "prod.tls" not in text.split("### Failures by severity", 1)[1].split("###", 1)[0]
    assert "### Collection issues" in text


def test_details_are_collapsed() -> None:
    text = markdown.render(sample_report())
    for title, count in (
        ("Failure and error details", 6),
        ("Waived", 1),
        ("Skipped", 1),
        ("Passed", 2),
    ):
        assert f"<details><summary>{title} ({count})</summary>" in text
    # ... and one per framework the sample's rules cite (azure-policy, mcsb, prowler).
    assert text.count("<details>") == text.count("</details>") == 4 + 3


def test_findings_are_grouped_by_the_frameworks_their_rules_cite() -> None:
    text = markdown.render(sample_report())
    section = text.split("### Controls by framework", 1)[1].split("<details><summary>Failure", 1)[0]
    assert (
        "<details><summary>azure-policy: 2 controls, 2 failing or not evaluated</summary>"
        in section
    )
    assert "<details><summary>mcsb: 1 control, 1 failing or not evaluated</summary>" in section
    # The geo-redundancy control: one failure and one waiver, the worst first.
    assert "| prod.backup.geo\\_redundant | 1 fail, 1 waived |" in section


def test_no_controls_no_section() -> None:
    report = sample_report()
    bare = report.model_copy(
        update={"findings": tuple(f.model_copy(update={"controls": ()}) for f in report.findings)}
    )
    assert "Controls by framework" not in markdown.render(bare)


@pytest.mark.parametrize(
    ("statuses", "verdict"),
    [
        ((Status.PASS, Status.SKIP), "PASS"),
        ((Status.PASS, Status.ERROR), "INCOMPLETE"),
        ((), "NOTHING CHECKED"),
        ((Status.FAIL, Status.ERROR), "INCOMPLETE"),
        ((Status.FAIL, Status.PASS), "FAIL"),
    ],
)
def test_verdict(statuses: tuple[Status, ...], verdict: str) -> None:
    report = sample_report().model_copy(update={"collection_issues": ()})
    template = report.findings[0]
    findings = tuple(
        template.model_copy(update={"status": status, "resource": f"env:V{index}"})
        for index, status in enumerate(statuses)
    )
    text = markdown.render(with_findings(report, findings))
    assert text.startswith(f"## engram-audit: prod: {verdict}\n")


def test_long_tables_are_cut_with_a_pointer_to_the_full_reports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(markdown, "MAX_ROWS", 2)
    text = markdown.render(sample_report())
    assert len(table_rows(text)) == 2
    assert "… and 3 more: see the JSON or SARIF report." in text
