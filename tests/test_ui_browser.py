"""End to end in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
create a collection, upload a PDF and a DOCX, watch progress reach done, search, open the cited
page. Screenshots of each page go to artifacts/ui/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from embedhub.server.app import create_app
from tests.conftest import ROOT, SHARED_DATA
from tests.kb.conftest import make_docx, make_pdf
from tests.live_server import live_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "artifacts" / "ui"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make test installs it: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def fixtures(tmp_path) -> tuple[Path, Path, str]:
    """Real fixtures from ../shared/data when present, files made here otherwise."""
    folder = SHARED_DATA / "pdf-docx-fixtures"
    if (folder / "pdf" / "multi_page.pdf").exists() and (folder / "docx" / "word_sample.docx").exists():
        return folder / "pdf" / "multi_page.pdf", folder / "docx" / "word_sample.docx", "personal computers"
    pdf = make_pdf(tmp_path / "history.pdf", ["Typewriters came first.", "Then personal computers arrived."])
    return pdf, make_docx(tmp_path / "report.docx"), "personal computers"


def test_upload_search_and_open_cited_page(browser, settings, minilm_encoder, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf, docx, query = fixtures(tmp_path)
    app = create_app(
        settings.model_copy(update={"home": tmp_path / "home"}), encoders={"minilm": minilm_encoder}
    )
    with live_server(app, "/ready") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/")
        page.fill("input[name=name]", "e2e")
        page.screenshot(path=str(ARTIFACTS / "01-collections.png"), full_page=True)
        page.click("text=Create collection")
        page.wait_for_selector("#dropzone")
        page.set_input_files("#file-input", [str(pdf), str(docx)])
        page.wait_for_function(
            "document.querySelectorAll('#jobs tr[data-status=done]').length === 2", timeout=180_000
        )
        page.wait_for_function("document.querySelectorAll('#documents tr').length === 2", timeout=30_000)
        assert page.locator("#jobs progress").first.get_attribute("value") == "100"
        page.screenshot(path=str(ARTIFACTS / "02-collection-done.png"), full_page=True)

        page.click("text=search this collection")
        page.fill("input[name=query]", query)
        page.click("button:has-text('Search')")
        page.wait_for_selector(".result")
        first = page.locator(".result").first
        assert pdf.name in first.inner_text() and "p. " in first.inner_text()
        assert page.locator(".result mark").count() > 0
        page.screenshot(path=str(ARTIFACTS / "03-search.png"), full_page=True)

        first.locator("a.open").click()
        page.wait_for_selector(".chunk.cited")
        page.wait_for_function("document.getElementById('page-image').naturalWidth > 0")
        cited_page = int(page.locator("#page-label").inner_text().split()[1])
        assert cited_page >= 1
        assert query.split()[0] in page.locator(".chunk.cited mark").inner_text().lower()
        page.screenshot(path=str(ARTIFACTS / "04-document.png"))

        page.click("text=Playground")
        page.click("button:has-text('Compare')")
        page.wait_for_selector(".heatmap td")
        assert page.locator(".heatmap td").first.inner_text() == "1.000"
        page.screenshot(path=str(ARTIFACTS / "05-playground.png"))

        page.click("text=Settings")
        page.wait_for_selector("dl.settings")
        assert "all-MiniLM-L6-v2" in page.locator("dl.settings").inner_text()
        page.screenshot(path=str(ARTIFACTS / "06-settings.png"))
        assert errors == []


def test_ui_asks_for_the_api_key(browser, settings, tiny_encoder, tmp_path):
    app = create_app(
        settings.model_copy(update={"home": tmp_path / "home", "api_keys": ["sesame"]}),
        encoders={"tiny": tiny_encoder},
    )
    with live_server(app, "/health") as url:
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_selector("#key-dialog[open]")
        page.screenshot(path=str(ARTIFACTS / "07-api-key.png"))
        page.fill("#key-input", "sesame")
        page.click("#key-save")
        page.wait_for_selector("#create-form")
        assert page.evaluate("localStorage.getItem('embedhub-api-key')") == "sesame"
