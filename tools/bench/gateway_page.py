#!/usr/bin/env python3
"""Page weight and render time of the ui-gateway's web UI in headless Chromium; prints JSON.

    .venv/bin/python tools/bench/gateway_page.py --url http://127.0.0.1:8080/ --runs 20

Loads the page `--runs` times in one headless Chromium (Debian's `chromium` and `chromium-driver`)
with the HTTP cache disabled, so every load is a cold one, and reads the Navigation and Resource
Timing entries of each load (the Performance API):
- bytes: `transferSize` (on the wire, headers included), `encodedBodySize` (body as sent, i.e.
  compressed) and `decodedBodySize` of the page and of each asset, from the last load;
- times, from navigation start, median/min/max over the loads: `DOMContentLoaded` (the end of its
  event) and `load` (the end of the load event).
"""

import argparse
import json
import statistics
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

TIMINGS = """
const [nav] = performance.getEntriesByType('navigation');
if (!nav || nav.loadEventEnd === 0) return null;
const size = e => ({name: e.name, initiator_type: e.initiatorType || 'navigation',
  transfer_bytes: e.transferSize, encoded_body_bytes: e.encodedBodySize, decoded_body_bytes: e.decodedBodySize});
return {page: size(nav), resources: performance.getEntriesByType('resource').map(size),
  dom_content_loaded_ms: nav.domContentLoadedEventEnd, load_ms: nav.loadEventEnd};
"""


def browser(chromium, chromedriver):
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    return driver


def load(driver, url):
    """One cold load of `url`: its timing entries once the load event has ended."""
    driver.get("about:blank")
    driver.execute_cdp_cmd("Network.clearBrowserCache", {})
    driver.get(url)
    return WebDriverWait(driver, 30, poll_frequency=0.05).until(lambda d: d.execute_script(TIMINGS))


def summary(values):
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="page to load, e.g. http://127.0.0.1:8080/")
    parser.add_argument("--runs", type=int, default=20, help="cold loads to time (default 20)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    arguments = parser.parse_args()
    if arguments.runs < 1:
        parser.error("--runs must be at least 1")

    driver = browser(arguments.chromium, arguments.chromedriver)
    try:
        loads = [load(driver, arguments.url) for _ in range(arguments.runs)]
        version = driver.capabilities.get("browserVersion", "")
    finally:
        driver.quit()

    last = loads[-1]
    entries = [last["page"], *last["resources"]]
    report = {
        "url": arguments.url,
        "runs": arguments.runs,
        "browser": f"Chromium {version} (headless, HTTP cache disabled)",
        "page": last["page"],
        "resources": last["resources"],
        "total": {
            "requests": len(entries),
            "transfer_bytes": sum(entry["transfer_bytes"] for entry in entries),
            "encoded_body_bytes": sum(entry["encoded_body_bytes"] for entry in entries),
            "decoded_body_bytes": sum(entry["decoded_body_bytes"] for entry in entries),
        },
        "dom_content_loaded_ms": summary([entry["dom_content_loaded_ms"] for entry in loads]),
        "load_ms": summary([entry["load_ms"] for entry in loads]),
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
