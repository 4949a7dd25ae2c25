"""The HTML report in a real headless Chromium (Debian's chromium + chromium-driver): it loads
from file:// with no console error and no network request, its filters work, hostile text stays
text, and a screenshot is taken (written to docs/ with UPDATE_SCREENSHOTS=1)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engram_audit.engine import evaluate
from engram_audit.model import ALL_SOURCES, Snapshot
from engram_audit.model.report import RunContext
from engram_audit.policy.loader import load_policy
from engram_audit.reporters import console, html
from tests.conftest import ROOT, snapshot_data

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="Debian's chromium and chromium-driver are not installed (scripts/test installs them)",
)
DOCS = ROOT / "docs"
HOSTILE = '<script>window.pwned = 1</script><img src="https://attacker.example/x.png" onerror="window.pwned = 2">'


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in CI; the page is our own file
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1600",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _report_file(
    tmp_path: Path, *, hostile: bool = False, context: RunContext | None = None
) -> Path:
    data = snapshot_data("prod-drifted")
    if hostile:
        data["postgres"]["databases"][0]["invalid_indexes"][0]["name"] = HOSTILE
    policy = load_policy(ROOT / "policies" / "prod.yaml")
    report = evaluate(policy, Snapshot.model_validate(data), ALL_SOURCES)
    report = report.model_copy(update={"context": context})
    path = tmp_path / "report.html"
    path.write_text(html.render(report), encoding="utf-8")
    return path


def _json_report() -> str:
    from engram_audit.reporters import json_report

    policy = load_policy(ROOT / "policies" / "prod.yaml")
    report = evaluate(policy, Snapshot.model_validate(snapshot_data("prod-drifted")), ALL_SOURCES)
    return json_report.render(report)


def _requests(driver: Any, page: Path | None = None) -> list[str]:
    """URLs requested by ``page`` (all requests when None): the browser's own pages aside."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") != "Network.requestWillBeSent":
            continue
        params = message["params"]
        if page is None or params.get("documentURL") == page.as_uri():
            urls.append(params["request"]["url"])
    return urls


def test_loads_offline_without_console_errors_and_filters_work(
    browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    page = _report_file(tmp_path)
    _requests(browser)  # drain what the browser itself loaded before our page
    browser.get(page.as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    requests = _requests(browser, page)
    assert requests == [page.as_uri()], requests

    frameworks = browser.find_elements(By.CSS_SELECTOR, "#controls h3")
    assert {h.text for h in frameworks} >= {"azure-policy", "prowler"}
    findings = browser.find_elements(By.CSS_SELECTOR, ".finding")
    total = len(findings)
    expected = len(json.loads(_json_report()).get("findings", []))
    assert total == expected
    shown = browser.find_element(By.ID, "shown-count")
    assert shown.text == f"{total} of {total} findings shown"
    browser.find_element(By.CSS_SELECTOR, "input[name=status][value=pass]").click()
    visible = [f for f in findings if f.is_displayed()]
    assert visible and all(f.get_attribute("data-status") != "pass" for f in visible)
    assert shown.text == f"{len(visible)} of {total} findings shown"
    browser.find_element(By.CSS_SELECTOR, "input[name=severity][value=critical]").click()
    assert all(f.get_attribute("data-severity") != "critical" for f in findings if f.is_displayed())

    screenshot = tmp_path / "html-report.png"
    browser.find_element(By.CSS_SELECTOR, "input[name=status][value=pass]").click()
    browser.find_element(By.CSS_SELECTOR, "input[name=severity][value=critical]").click()
    browser.execute_script("window.scrollTo(0, 0)")
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("UPDATE_SCREENSHOTS"):
        shutil.copy(screenshot, DOCS / "html-report.png")


def test_hostile_text_stays_text(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    page = _report_file(tmp_path, hostile=True)
    _requests(browser)
    browser.get(page.as_uri())
    assert browser.execute_script("return window.pwned === undefined")
    assert HOSTILE in browser.find_element(By.ID, "findings").text
    requests = _requests(browser, page)
    assert requests == [page.as_uri()], requests


_ANSI = {
    "\x1b[0m": "</span>",
    "\x1b[31;1m": '<span style="color:#e53935;font-weight:bold">',
    "\x1b[35;1m": '<span style="color:#ab47bc;font-weight:bold">',
    "\x1b[36m": '<span style="color:#00acc1">',
    "\x1b[33m": '<span style="color:#c0a000">',
    "\x1b[32m": '<span style="color:#43a047">',
    "\x1b[41;97;1m": '<span style="background:#c62828;color:#fff;font-weight:bold">',
    "\x1b[33;1m": '<span style="color:#f9a825;font-weight:bold">',
    "\x1b[2m": '<span style="opacity:.6">',
}


def test_console_screenshot_at_100_columns(browser: Any, tmp_path: Path) -> None:
    """The console report as a 100-column terminal shows it, coloured, for the README."""
    from html import escape

    policy = load_policy(ROOT / "policies" / "prod.yaml")
    report = evaluate(policy, Snapshot.model_validate(snapshot_data("prod-drifted")), ALL_SOURCES)
    text = escape(console.render(report, color=True, width=100))
    for code, tag in _ANSI.items():
        text = text.replace(code, tag)
    assert "\x1b" not in text
    page = tmp_path / "console.html"
    page.write_text(
        "<html><body style='background:#1e1e1e;color:#ddd;margin:0'>"
        f"<pre style='font:13px monospace;padding:12px;width:100ch'>{text}</pre></body></html>",
        encoding="utf-8",
    )
    browser.get(page.as_uri())
    screenshot = tmp_path / "console.png"
    assert browser.save_screenshot(str(screenshot))
    if os.environ.get("UPDATE_SCREENSHOTS"):
        shutil.copy(screenshot, DOCS / "console.png")


def test_policy_lines_link_to_azure_repos_without_loading_anything(
    browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    commit = "89abcdef0123456789abcdef0123456789abcdef"
    context = RunContext(
        ci="azure-pipelines",
        commit=commit,
        repository_url="https://dev.azure.com/fabrikam/Estate/_git/estate",
    )
    page = _report_file(tmp_path, context=context)
    _requests(browser)
    browser.get(page.as_uri())
    assert _requests(browser, page) == [page.as_uri()]  # links are not fetched
    hrefs = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, ".finding a")]
    assert hrefs
    link = re.compile(
        r"https://dev\.azure\.com/fabrikam/Estate/_git/estate\?path=/policies/([a-z-]+)\.yaml"
        rf"&version=GC{commit}&line=(\d+)&lineEnd=(\d+)&lineStartColumn=1&lineEndColumn=1"
        r"&lineStyle=plain&_a=contents"
    )
    matches = [link.fullmatch(href) for href in hrefs]
    assert all(matches), [h for h, m in zip(hrefs, matches, strict=True) if not m]
    assert all(int(m[3]) == int(m[2]) + 1 for m in matches if m)
