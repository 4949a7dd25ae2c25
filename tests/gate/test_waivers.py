"""Waivers: validated files with located errors; inclusive expiry; globs; stale and expiring."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest

from engram_audit.errors import InputError
from engram_audit.gate.waivers import Waiver, apply_waivers, load_waivers
from engram_audit.model import Finding, SourceLocation, Status
from tests.golden.sample import REPLICA, SERVER, sample_report

GEO = "prod.backup.geo_redundant"


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "waivers.yaml"
    path.write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")
    return path


def waiver_file(tmp_path: Path, *, resource: str = SERVER, expires: str = "2031-01-31") -> Path:
    return write(
        tmp_path,
        f"""
        apiVersion: engram-audit/v1
        waivers:
          - rule: {GEO}
            resource: "{resource}"
            reason: Geo backup needs a rebuild; scheduled for the Q1 maintenance window
            owner: dba-team@example.com
            ticket: SEC-142
            expires: {expires}
        """,
    )


def problems(path: Path) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_waivers(path)
    return [str(problem) for problem in caught.value.problems]


def find(findings: tuple[Finding, ...], rule: str, resource: str) -> Finding:
    return next(f for f in findings if f.rule == rule and f.resource == resource)


def test_loads_a_valid_file_with_positions(tmp_path: Path) -> None:
    (waiver,) = load_waivers(waiver_file(tmp_path))
    assert waiver.rule == GEO
    assert waiver.expires == date(2031, 1, 31)
    assert waiver.ticket == "SEC-142"
    assert (waiver.location.line, waiver.location.column) == (3, 5)


@pytest.mark.parametrize(
    ("expires", "expected"),
    [
        ("2031-02-30", "waivers.yaml:8:14: [waivers[0].expires] invalid date '2031-02-30'"),
        ("2031-13-01", "waivers.yaml:8:14: [waivers[0].expires] invalid date '2031-13-01'"),
        ("31/01/2031", "waivers.yaml:8:14: [waivers[0].expires] invalid date '31/01/2031'"),
        ('"20310131"', "waivers.yaml:8:14: [waivers[0].expires] invalid date '20310131'"),
        ("soon", "waivers.yaml:8:14: [waivers[0].expires] invalid date 'soon'"),
    ],
)
def test_malformed_dates_are_located_input_errors(
    tmp_path: Path, expires: str, expected: str
) -> None:
    (problem,) = problems(waiver_file(tmp_path, expires=expires))
    assert expected in problem
    assert problem.endswith("write the last valid day as YYYY-MM-DD")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        waivers:
          - rule: a.rule
            resource: x
            reason: r
            owner: o
            url: not-a-link
            expires: 2031-02-30
          - rule: b.rule
            resource: x
            reason: r
            owner: o
            expires: 2031-01-01
            colour: red
        """,
    )
    found = problems(path)
    assert any(":6:" in p and "waivers[0].url" in p for p in found)
    assert any(":7:" in p and "invalid date '2031-02-30'" in p for p in found)
    assert any(":8:" in p and "'ticket' is a required property" in p for p in found)
    assert any(":13:" in p and "unknown key 'colour'" in p for p in found)


def test_missing_file_and_bad_yaml_are_input_errors(tmp_path: Path) -> None:
    assert problems(tmp_path / "absent.yaml") == [f"{tmp_path / 'absent.yaml'}:1:1: file not found"]
    broken = write(tmp_path, "waivers: [\n  - rule: x\n")
    (problem,) = problems(broken)
    assert "invalid YAML" in problem


def test_unexpired_waiver_makes_the_failure_waived_and_not_counted(tmp_path: Path) -> None:
    waivers = load_waivers(waiver_file(tmp_path))
    outcome = apply_waivers(sample_report(), waivers, today=date(2031, 1, 15))
    finding = find(outcome.report.findings, GEO, SERVER)
    assert finding.status is Status.WAIVED
    assert "SEC-142" in (finding.waiver or "")
    assert outcome.report.summary.by_status[Status.FAIL] == 4
    assert outcome.report.summary.by_status[Status.WAIVED] == 2
    assert outcome.applied == waivers
    assert outcome.stale == ()


def test_expiry_date_is_inclusive(tmp_path: Path) -> None:
    waivers = load_waivers(waiver_file(tmp_path, expires="2031-01-31"))
    on_last_day = apply_waivers(sample_report(), waivers, today=date(2031, 1, 31))
    assert find(on_last_day.report.findings, GEO, SERVER).status is Status.WAIVED
    day_after = apply_waivers(sample_report(), waivers, today=date(2031, 2, 1))
    finding = find(day_after.report.findings, GEO, SERVER)
    assert finding.status is Status.FAIL
    assert (finding.waiver or "").startswith("waiver expired on 2031-01-31 (owner: dba-team")
    assert day_after.expired == waivers
    assert any(
        n.startswith("waiver expired on 2031-01-31") for n in day_after.notes(date(2031, 2, 1))
    )


def test_glob_and_arm_id_case_match(tmp_path: Path) -> None:
    pattern = "/SUBSCRIPTIONS/*/flexibleServers/pg-engram-*"
    waivers = load_waivers(waiver_file(tmp_path, resource=pattern))
    outcome = apply_waivers(sample_report(), waivers, today=date(2031, 1, 1))
    assert find(outcome.report.findings, GEO, SERVER).status is Status.WAIVED
    # The replica was already waived by the engine fixture; the glob covers it too.
    assert find(outcome.report.findings, GEO, REPLICA).status is Status.WAIVED


def test_database_objects_match_case_sensitively() -> None:
    resource = "postgresql://pg-engram-prod.postgres.database.azure.com:5432/zep/public.message_embedding.embedding"
    report = sample_report()
    exact = _waiver("prod.pg.vector_index", resource)
    shouted = _waiver("prod.pg.vector_index", resource.upper())
    assert apply_waivers(report, (exact,), date(2031, 1, 1)).applied == (exact,)
    assert apply_waivers(report, (shouted,), date(2031, 1, 1)).stale == (shouted,)


def test_errors_are_never_waived_and_such_a_waiver_is_not_stale() -> None:
    tls = _waiver("prod.tls.min_version", SERVER)
    outcome = apply_waivers(sample_report(), (tls,), date(2031, 1, 1))
    assert find(outcome.report.findings, "prod.tls.min_version", SERVER).status is Status.ERROR
    assert outcome.applied == ()
    assert outcome.stale == ()


def test_waiver_matching_nothing_or_only_passes_is_stale() -> None:
    typo = _waiver("prod.backup.geo_redundnat", SERVER)
    fixed = _waiver("prod.backup.retention_days", REPLICA)  # passes in the sample
    outcome = apply_waivers(sample_report(), (typo, fixed), date(2031, 1, 1))
    assert outcome.stale == (typo, fixed)
    notes = outcome.notes(date(2031, 1, 1))
    assert sum(n.startswith("stale waiver (waivers.yaml:") for n in notes) == 2


def test_warn_expiring_lists_waivers_within_the_window() -> None:
    soon = _waiver(GEO, SERVER, date(2031, 1, 20))
    later = _waiver("prod.dsn.sslmode", "env:*", date(2031, 6, 1))
    gone = _waiver("prod.monitor.cpu_alert", SERVER, date(2030, 12, 1))
    outcome = apply_waivers(sample_report(), (soon, later, gone), date(2031, 1, 15), warn_days=5)
    assert outcome.expiring == (soon,)
    assert "waiver expiring in 5 day(s) on 2031-01-20" in "\n".join(
        outcome.notes(date(2031, 1, 15))
    )
    quiet = apply_waivers(sample_report(), (soon, later, gone), date(2031, 1, 15))
    assert quiet.expiring == ()


def test_first_unexpired_waiver_wins_and_expired_one_is_ignored() -> None:
    old = _waiver(GEO, SERVER, date(2030, 1, 1), reason="old reason")
    current = _waiver(GEO, "/subscriptions/*", date(2031, 12, 31), reason="current reason")
    outcome = apply_waivers(sample_report(), (old, current), date(2031, 1, 1))
    finding = find(outcome.report.findings, GEO, SERVER)
    assert finding.status is Status.WAIVED
    assert (finding.waiver or "").startswith("current reason")


def _waiver(
    rule: str, resource: str, expires: date = date(2031, 12, 31), reason: str = "accepted"
) -> Waiver:
    return Waiver(
        rule=rule,
        resource=resource,
        reason=reason,
        owner="owner@example.com",
        expires=expires,
        location=SourceLocation(path="waivers.yaml", line=2),
        ticket="SEC-1",
    )
