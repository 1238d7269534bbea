"""The dashboard in a real headless browser (Debian's chromium, driven by Playwright): it
lists a pending aggregation with its missing branches, and its release button releases."""

import os
import shutil
from pathlib import Path

import httpx
import yaml
from playwright.sync_api import expect, sync_playwright

from tests.conftest import Serve
from tests.support.app import binary
from tests.support.sink import running_sink, wait_until

CHROMIUM = "/usr/bin/chromium"
TOKEN = "dashboard-token"
# Chromium as root in a container, and nothing that phones home.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def test_dashboard_lists_pending_and_releases(serve: Serve, redis_url: str, tmp_path: Path) -> None:
    assert shutil.which(CHROMIUM), (
        "chromium is missing: `make test` installs it (apt-get install chromium)"
    )
    with running_sink() as sink:
        flows = tmp_path / "flows.yaml"
        flow = {"name": "document-analysis", "branch": "path", "correlation": "data:/documentId",
                "branches": ["virus-scanner", "content-classifier", "ocr-extractor", "metadata-extractor"],
                "timeout": "10m", "sink": sink.url}  # fmt: skip
        flows.write_text(yaml.safe_dump({"flows": [flow]}))
        service = serve(AGGREGATOR_REDIS_URL=redis_url, AGGREGATOR_FLOWS_FILE=str(flows),
                        AGGREGATOR_ADMIN_TOKEN=TOKEN)  # fmt: skip
        service.wait_ready()
        for document, branches in (("doc-42", 2), ("doc-43", 1)):
            for branch in flow["branches"][:branches]:
                response = httpx.post(
                    f"{service.base_url}/flows/document-analysis/branches/{branch}",
                    **binary({"documentId": document}),
                )
                assert response.status_code == 202

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 640})
            page.goto(f"{service.base_url}/ui")
            page.fill("#token", TOKEN)
            page.click("#save")
            row = page.locator('tr[data-correlation="doc-42"]')
            expect(row).to_be_visible()
            expect(row.locator(".tag.missing")).to_have_text(
                ["ocr-extractor", "metadata-extractor"]
            )
            expect(row.locator(".tag:not(.missing)")).to_have_count(2)
            expect(page.locator('tr[data-correlation="doc-43"]')).to_be_visible()
            screenshot = Path(os.environ.get("AGGREGATOR_SCREENSHOT", tmp_path / "dashboard.png"))
            page.screenshot(path=str(screenshot))
            assert screenshot.stat().st_size > 0
            row.get_by_role("button", name="Release now").click()
            [received] = wait_until(lambda: sink.got(1))
            expect(row).to_have_count(0)
            browser.close()
    event = received.event()
    assert event.attributes["aggregationstatus"] == "manual"
    assert event.data_value()["missing"] == ["ocr-extractor", "metadata-extractor"]


def test_the_page_loads_nothing_from_elsewhere() -> None:
    page = (Path(__file__).parent.parent / "aggregator" / "ui" / "dashboard.html").read_text()
    assert "http://" not in page
    assert "https://" not in page
    assert "<script src" not in page
    assert "<link" not in page
