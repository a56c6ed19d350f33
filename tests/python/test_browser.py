"""The web UI in a real browser: Selenium drives Debian's headless Chromium (`chromium` and
`chromium-driver`, never a downloaded driver) against the api + collector + ui-gateway of the
`gateway` fixture. A user computes a product, sees it with its time and follows its trace to spans
of both services; an invalid matrix is reported inline without a request; no page logs a console
error (a Content-Security-Policy violation is one). Screenshots of every step land in
`target/test-artifacts/browser/`.

The tests skip only when Chromium or its driver is not installed; `.ci/run` installs both and sets
AXIOM25_BROWSER_REQUIRED=1, under which their absence is a failure instead."""

import json
import os
import pathlib
import re
import shutil
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = ROOT / "target/test-artifacts/browser"
TRACE_PATH = re.compile(r"/ops/traces/[0-9a-f]{32}")

missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
if missing and os.environ.get("AXIOM25_BROWSER_REQUIRED") == "1":
    raise RuntimeError(f"AXIOM25_BROWSER_REQUIRED=1 but {missing} missing: apt-get install chromium chromium-driver")
pytestmark = pytest.mark.skipif(bool(missing), reason=f"{missing} not installed (apt-get install chromium chromium-driver)")

if not missing:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium that keeps every console message for `get_log("browser")`."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver, name):
    assert driver.save_screenshot(str(SCREENSHOTS / f"{name}.png")), f"screenshot {name} not saved"


def console_errors(driver):
    """Console messages of level SEVERE since the last call (CSP violations are among them)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def wait(driver, seconds=10):
    return WebDriverWait(driver, seconds, poll_frequency=0.1)


def fill(driver, element_id, text):
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def matrix_requests(driver):
    """Matrix API requests this page has made, from the Resource Timing entries."""
    return driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(name => name.includes('/api/v1/matrix/'))"
    )


def test_selenium_drives_headless_chromium_to_the_openapi_document(browser, gateway):
    browser.get(f"{gateway.url}/api/v1/openapi.json")
    document = json.loads(browser.find_element(By.TAG_NAME, "body").text)
    assert document["openapi"].startswith("3.1.")
    assert "/api/v1/matrix/multiply" in document["paths"]
    screenshot(browser, "00-openapi-document")
    # A bare JSON document has no <link rel=icon>, so Chromium asks for /favicon.ico (a 404): not
    # a page of ours, so its console is drained rather than checked.
    console_errors(browser)


def test_a_product_shows_its_result_time_and_a_trace_through_both_services(browser, gateway):
    console_errors(browser)  # drop what earlier pages logged
    browser.get(f"{gateway.url}/")
    screenshot(browser, "01-calculator")
    Select(browser.find_element(By.ID, "op")).select_by_value("multiply")
    fill(browser, "a", "1 2; 3 4")
    fill(browser, "b", "5; 6")
    screenshot(browser, "02-multiply-filled")
    browser.find_element(By.ID, "compute").click()

    cells = wait(browser).until(
        lambda driver: driver.find_elements(By.CSS_SELECTOR, "#result table td") or False,
        "no result table appeared in #result",
    )
    assert [float(cell.text) for cell in cells] == [17.0, 39.0]
    elapsed = browser.find_element(By.ID, "elapsed")
    assert elapsed.is_displayed() and elapsed.text.strip(), "#elapsed is not shown"
    screenshot(browser, "03-multiply-result")
    assert console_errors(browser) == []

    link = browser.find_element(By.CSS_SELECTOR, "a#trace-link")
    href = link.get_attribute("href")
    assert TRACE_PATH.search(href), href
    link.click()
    wait(browser).until(expected_conditions.url_contains("/ops/traces/"))
    assert TRACE_PATH.search(browser.current_url), browser.current_url

    # Spans reach the collector through two export queues: reload until both services' are shown.
    deadline = time.monotonic() + 30
    services = set()
    while time.monotonic() < deadline:
        spans = browser.find_elements(By.CSS_SELECTOR, ".span[data-service]")
        services = {span.get_attribute("data-service") for span in spans}
        if {"ui-gateway", "api"} <= services:
            break
        time.sleep(0.5)
        browser.refresh()
    screenshot(browser, "04-trace")
    assert browser.find_elements(By.CSS_SELECTOR, '.span[data-service="ui-gateway"]'), services
    assert browser.find_elements(By.CSS_SELECTOR, '.span[data-service="api"]'), services
    assert console_errors(browser) == []


def test_an_invalid_matrix_is_reported_inline_without_a_request(browser, gateway):
    console_errors(browser)  # drop what earlier pages logged
    browser.get(f"{gateway.url}/")
    Select(browser.find_element(By.ID, "op")).select_by_value("multiply")
    fill(browser, "a", "1 2; 3")
    fill(browser, "b", "5; 6")
    browser.find_element(By.ID, "compute").click()

    error = wait(browser).until(
        lambda driver: (field := driver.find_element(By.ID, "a-error")).text.strip() and field,
        "#a-error stayed empty",
    )
    assert error.is_displayed()
    screenshot(browser, "05-invalid-matrix")
    assert browser.find_elements(By.CSS_SELECTOR, "#result table") == []
    assert matrix_requests(browser) == [], "an invalid matrix was sent to the API"
    assert console_errors(browser) == []


def test_the_operations_page_shows_readiness_metrics_and_traces(browser, gateway):
    # The gateway polls health and span metrics in the background; RED needs two reads of the
    # span metrics: reload until both are in (bounded).
    console_errors(browser)
    browser.get(f"{gateway.url}/ops")
    deadline = time.monotonic() + 30
    ready, red = None, []
    while time.monotonic() < deadline:
        upstream = browser.find_elements(By.CSS_SELECTOR, '#readiness [data-upstream="api"][data-ready]')
        ready = upstream[0].get_attribute("data-ready") if upstream else None
        red = browser.find_elements(By.ID, "red")
        if ready == "true" and red:
            break
        time.sleep(0.5)
        browser.refresh()
    assert ready == "true", f'#readiness [data-upstream="api"] data-ready={ready!r}'
    assert red, "#red never appeared"
    for section in ("red", "traces"):
        assert browser.find_element(By.ID, section).is_displayed(), f"#{section} is not shown"
    screenshot(browser, "06-ops")
    assert console_errors(browser) == []
