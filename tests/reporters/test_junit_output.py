"""JUnit: valid against the junit-10 XSD, one suite per resource, stable unique names."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
import xmlschema

from engram_audit.model import Report, Status, Summary
from engram_audit.reporters import junit
from tests.golden.sample import REFERENCE_SCHEMAS, SERVER, sample_report

XSD = REFERENCE_SCHEMAS / "jenkins-xunit-junit-10.xsd"


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def parse(report: Report) -> ET.Element:
    return ET.fromstring(junit.render(report).encode("utf-8"))


def test_sample_is_valid_against_the_junit_10_xsd(schema: xmlschema.XMLSchema) -> None:
    schema.validate(junit.render(sample_report()))


def test_one_suite_per_resource_and_one_case_per_rule() -> None:
    report = sample_report()
    root = parse(report)
    suites = root.findall("testsuite")
    resources = sorted({f.resource for f in report.findings})
    assert [s.get("name") for s in suites] == [f"prod {r}" for r in resources]
    server = next(s for s in suites if s.get("name") == f"prod {SERVER}")
    assert [c.get("name") for c in server.findall("testcase")] == [
        "prod.backup.geo_redundant",
        "prod.backup.retention_days",
        "prod.monitor.cpu_alert",
        "prod.tls.min_version",
    ]


def test_counts_match_the_findings() -> None:
    root = parse(sample_report())
    # Five failures, one of them info: below the default --fail-on (low) it is reported in
    # <system-out> of a passing test, so CI test reports agree with the gate.
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("10", "4", "1")
    for suite in root.findall("testsuite"):
        cases = suite.findall("testcase")
        assert suite.get("tests") == str(len(cases))
        assert suite.get("failures") == str(sum(c.find("failure") is not None for c in cases))
        assert suite.get("errors") == str(sum(c.find("error") is not None for c in cases))
        assert suite.get("skipped") == str(sum(c.find("skipped") is not None for c in cases))
        assert suite.get("timestamp") == "2031-01-15T03:00:00"


def test_outcome_elements_carry_the_reason() -> None:
    cases = {
        (c.get("classname"), c.get("name")): c for c in parse(sample_report()).iter("testcase")
    }
    failure = cases[(f"prod {SERVER}", "prod.backup.geo_redundant")].find("failure")
    assert failure is not None
    assert failure.get("type") == "high"
    assert failure.get("message") == (
        "Geo-redundant backup is enabled: expected Enabled, found Disabled"
    )
    assert "Remediation: az postgres flexible-server create" in (failure.text or "")
    error = cases[(f"prod {SERVER}", "prod.tls.min_version")].find("error")
    assert error is not None
    assert "403 AuthorizationFailed" in (error.get("message") or "")
    waived = cases[(f"prod {SERVER}-replica", "prod.backup.geo_redundant")].find("skipped")
    assert waived is not None
    assert (waived.get("message") or "").startswith("waived: Read replica")
    skipped = cases[("prod env:ZEP_READER_DSN", "prod.dsn.sslmode")].find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "skipped: ZEP_READER_DSN is not set"


def test_times_have_at_most_three_decimals() -> None:
    text = junit.render(sample_report())
    times = re.findall(r'time="([^"]*)"', text)
    assert times
    assert all(re.fullmatch(r"\d+(\.\d{1,3})?", t) for t in times)


def test_duplicate_rule_and_resource_get_unique_stable_names(
    schema: xmlschema.XMLSchema,
) -> None:
    report = sample_report()
    twice = tuple(sorted((*report.findings, report.findings[0]), key=lambda f: f.sort_key))
    doubled = report.model_copy(update={"findings": twice, "summary": Summary.of(twice)})
    pairs = [(c.get("classname"), c.get("name")) for c in parse(doubled).iter("testcase")]
    assert len(pairs) == len(set(pairs))
    assert ("prod " + twice[0].resource, twice[0].rule + " #2") in pairs
    assert junit.render(doubled) == junit.render(doubled)
    schema.validate(junit.render(doubled))


def test_xml_illegal_characters_are_removed(schema: xmlschema.XMLSchema) -> None:
    report = sample_report()
    hostile = "bell\x07 nul\x00 esc\x1b form\x0c ok\ttab \ufffe"
    findings = tuple(
        f.model_copy(update={"message": hostile, "actual": hostile}) for f in report.findings
    )
    text = junit.render(report.model_copy(update={"findings": findings}))
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe]", text)
    assert "bell nul esc form ok\ttab" in text or "bell nul esc form ok&#09;tab" in text
    schema.validate(text)


def test_all_passing_report_has_no_outcome_elements(schema: xmlschema.XMLSchema) -> None:
    report = sample_report()
    passing = tuple(f.model_copy(update={"status": Status.PASS}) for f in report.findings)
    root = parse(report.model_copy(update={"findings": passing, "summary": Summary.of(passing)}))
    assert root.get("failures") == "0"
    assert root.find(".//failure") is None
    assert root.find(".//skipped") is None


def test_collection_issues_are_attached_to_their_resource_suite() -> None:
    suites = {s.get("name"): s for s in parse(sample_report()).findall("testsuite")}
    err = suites[f"prod {SERVER}"].find("system-err")
    assert err is not None
    assert "collection incomplete (parameters): 403 AuthorizationFailed" in (err.text or "")


def test_junit_xml_library_output_is_not_schema_valid(schema: xmlschema.XMLSchema) -> None:
    """Why junit.py uses the standard library (the README): if junit-xml ever writes
    XSD-valid output, this fails and the choice can be revisited."""
    from junit_xml import TestCase, TestSuite, to_xml_report_string

    case = TestCase("rule", classname="prod resource", elapsed_sec=0.1 + 0.2)
    case.add_failure_info(message="expected on, found off")
    text = to_xml_report_string(
        [TestSuite("prod resource", [case], timestamp="2031-01-15T03:00:00")]
    )
    assert 'disabled="0"' in text
    assert not schema.is_valid(text)
