#!/usr/bin/python3
"""Opens a backtest HTML report in headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium) as an analyst would, and checks that it
renders: no console errors, every plot drawn with visible bars, the tables
filled. Saves a full-page screenshot. Exit 0 when all holds; 1 with the
reasons otherwise; 2 when the browser cannot be had (the reason said).

usage: report_in_browser.py REPORT.html SCREENSHOT.png [--min-plots N]
"""
import argparse
import pathlib
import shutil
import sys
import tempfile


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("screenshot")
    ap.add_argument("--min-plots", type=int, default=6)
    args = ap.parse_args()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
    except ImportError as e:
        print(f"cannot import selenium ({e}): install Debian's python3-selenium (scripts/setup does)", file=sys.stderr)
        return 2
    for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not shutil.which(tool):
            print(f"{tool} is missing: install Debian's chromium and chromium-driver (scripts/setup does)",
                  file=sys.stderr)
            return 2
    profile_dir = tempfile.mkdtemp(prefix="boxwatch-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1100,900", f"--user-data-dir={profile_dir}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    except Exception as e:  # the driver's own message says what failed
        print(f"cannot start chromium through chromedriver: {e}", file=sys.stderr)
        return 2
    problems = []
    try:
        driver.get(pathlib.Path(args.report).resolve().as_uri())
        if not driver.title.startswith("Backtest"):
            problems.append(f"page title is {driver.title!r}, not a backtest report")
        for entry in driver.get_log("browser"):
            if entry.get("level") in ("SEVERE", "ERROR"):
                problems.append(f"console: {entry.get('message')}")
        plots = driver.find_elements(By.CSS_SELECTOR, "svg.plot")
        if len(plots) < args.min_plots:
            problems.append(f"{len(plots)} plots rendered, expected at least {args.min_plots}")
        drawn = 0
        for svg in plots:
            size = svg.size
            if size["width"] < 300 or size["height"] < 100:
                problems.append(f"plot {svg.get_attribute('aria-label')!r} is {size['width']}x{size['height']} px")
            bars = [r for r in svg.find_elements(By.TAG_NAME, "rect")
                    if float(r.get_attribute("height") or 0) > 0 and float(r.get_attribute("width") or 0) > 0]
            if bars:
                drawn += 1
        if drawn < args.min_plots:
            problems.append(f"only {drawn} plots have visible bars")
        rows = driver.find_elements(By.CSS_SELECTOR, "table tbody tr")
        if len(rows) < 5:
            problems.append(f"only {len(rows)} table rows")
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1100, min(int(height) + 40, 16000))
        driver.save_screenshot(args.screenshot)
        print(f"{len(plots)} plots ({drawn} with bars), {len(rows)} table rows, page {height} px high; "
              f"screenshot {args.screenshot}")
    finally:
        driver.quit()
        shutil.rmtree(profile_dir, ignore_errors=True)
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
