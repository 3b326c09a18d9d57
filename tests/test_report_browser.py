"""report.html in a real browser: Debian's Chromium, headless, driven by Playwright.

A real ``cranewatch run`` over a generated terminal, with markup planted in a CMS event
(it becomes a finding's title, account and raw record) and in a malformed line (a dead
letter). Chromium loads the report from disk inside a network namespace of its own
(``unshare --net``, where available) with the page's Content-Security-Policy bypassed, so
the request listener sees whatever the page itself would fetch: it must be only the file.
The screenshots are saved in the test's tmp dir.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipelines.generate import generate

pytestmark = pytest.mark.slow

HOSTILE_USER = '<script>document.title="pwned"</script>zpmc-x'
HOSTILE_LINE = '<img src=x onerror="document.title=\'pwned\'"> not a cms event'


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("Debian's chromium is not installed and could not be: `make test` installs it "
                    "(`make chromium`) only when run as root with apt-get")
    return path


def _launcher(chromium: str, tmp: Path) -> str:
    """Chromium in a network namespace of its own, where this machine allows one."""
    if shutil.which("unshare") and subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0:
        wrapper = tmp / "chromium-no-network"
        wrapper.write_text(f'#!/bin/sh\nexec unshare --net -- "{chromium}" "$@"\n')
        wrapper.chmod(0o755)
        return str(wrapper)
    return chromium


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def run_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report-run")
    corpus, out = root / "corpus", root / "out"
    generate(str(corpus), events=3000, seed=5)
    cms = corpus / "cms" / "cms-events.jsonl"
    lines = cms.read_text().splitlines()
    change = next(json.loads(line) for line in lines if '"parameter_change"' in line)
    change.update(user=HOSTILE_USER, parameter="wind.trip_speed_ms", old_value="18.5", new_value="40")
    with cms.open("a") as fh:
        fh.write(json.dumps(change) + "\n" + HOSTILE_LINE + "\n")
    exe = shutil.which("cranewatch", path=os.path.dirname(sys.executable)) or "cranewatch"
    proc = subprocess.run([exe, "run", "--config", str(corpus / "config.yaml"), "--output", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out


def _open(browser: Any, path: Path, requests: list[str], bypass_csp: bool = True, console: list[str] | None = None) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, bypass_csp=bypass_csp)
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    if console is not None:
        page.on("console", lambda m: console.append(m.text))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page


def test_the_report_in_chromium(run_output: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = _chromium()
    incidents = _jsonl(run_output / "incidents.jsonl")
    hostile = [i for i in incidents if any(HOSTILE_USER in a for a in i["accounts"])]
    assert hostile, "the planted CMS change raised no finding"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_launcher(chromium, tmp_path), args=["--no-sandbox"])
        try:
            requests: list[str] = []
            page = _open(browser, run_output / "report.html", requests)
            # incident rows: one per incident, most severe first
            rows = page.locator("tr.incident-row")
            assert rows.count() == len(incidents)
            order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
            labels = [rows.nth(k).get_attribute("data-severity") for k in range(rows.count())]
            assert labels == sorted(labels, key=order.__getitem__)
            assert page.locator("tr.incident-row .sev").first.inner_text().strip().lower() == labels[0]
            # a timeline per incident: each finding once, in event time, with evidence and raw record
            for inc in incidents:
                section = page.locator(f'section.incident[data-incident="{inc["incident_id"]}"]')
                entries = section.locator("li.timeline-entry")
                assert entries.count() == len(inc["findings"]), inc["title"]
                want = [f["finding_id"] for f in sorted(inc["findings"], key=lambda f: (f["first_seen"], f["finding_id"]))]
                assert [entries.nth(k).get_attribute("data-finding") for k in range(entries.count())] == want
            assert page.locator("li.evidence-item .ptr").count() >= len(incidents)
            assert page.locator("pre.raw").count() >= len(incidents)
            assert page.locator("pre.raw.unverified").count() == 0
            # findings over time, drawn as inline SVG: a row per detection that fired
            fired = {f["detection_id"] for inc in incidents for f in inc["findings"]}
            assert page.locator("#charts svg").count() == 2
            assert page.locator("#charts svg").first.locator("text.lbl").count() == len(fired)
            assert page.locator("#charts svg").first.evaluate("s => s.getBoundingClientRect().height") > 50
            # planted markup is text: no script or image element, nothing ran
            assert page.evaluate("document.querySelectorAll('script, img, iframe, object, embed').length") == 0
            assert page.title() != "pwned"
            body = page.inner_text("body")
            assert HOSTILE_USER in body and HOSTILE_LINE in body
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            page.locator(f'section.incident[data-incident="{hostile[0]["incident_id"]}"]').screenshot(
                path=str(tmp_path / "incident.png"))
            # the ISAC profile's report: same incidents, nothing raw, its TLP
            isac = _open(browser, run_output / "report-isac.html", requests)
            assert isac.locator("#tlp").inner_text() == "TLP:AMBER"
            assert isac.locator("tr.incident-row").count() == len(incidents)
            assert isac.locator("pre.raw").count() == 0
            assert HOSTILE_USER not in isac.inner_text("body")
            isac.screenshot(path=str(tmp_path / "report-isac.png"), full_page=True)
            # as a reader opens it, its own policy in force: styled, and nothing refused
            console: list[str] = []
            seen = _open(browser, run_output / "report.html", requests, bypass_csp=False, console=console)
            colour = seen.locator(".sev-critical, .sev-high").first.evaluate("e => getComputedStyle(e).backgroundColor")
            assert colour not in ("rgba(0, 0, 0, 0)", "transparent")
            assert [m for m in console if "Content Security Policy" in m] == []
        finally:
            browser.close()
    report, isac_report = (run_output / "report.html").as_uri(), (run_output / "report-isac.html").as_uri()
    assert requests == [report, isac_report, report]
    for name in ("report.png", "incident.png", "report-isac.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    print(f"screenshots in {tmp_path}")
