"""End to end in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
create a collection, upload a PDF and a DOCX, watch progress reach done, search, open the cited
page, come back to the search; upload a folder with duplicate names and rejected files. Screenshots
of each page (desktop and 375 px phone width) go to artifacts/ui/."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from embedhub.server.app import create_app
from tests.conftest import ROOT, SHARED_DATA
from tests.kb.conftest import make_docx, make_pdf
from tests.live_server import live_server
from tests.server.test_kb_api import wait_for_jobs

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
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
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
        assert page.locator("#jobs progress").first.get_attribute("value") == "1"  # max 1: the share done
        page.screenshot(path=str(ARTIFACTS / "02-collection-done.png"), full_page=True)
        # a Delete button sits on its row's middle line, level with the row's text
        row = page.locator("#documents tr").first
        button = row.locator("button.delete-doc").bounding_box()
        name = row.locator("td.name a").bounding_box()
        middle = lambda box: box["y"] + box["height"] / 2  # noqa: E731
        assert abs(middle(button) - middle(name)) <= 3, (button, name)

        page.click("text=search this collection")
        page.fill("input[name=query]", query)
        page.click("button:has-text('Search')")
        page.wait_for_selector(".result")
        first = page.locator(".result").first
        assert pdf.name in first.inner_text() and "p. " in first.inner_text()
        assert page.locator(".result mark").count() > 0
        snippet = first.locator(".snippet").inner_text()  # the snippet's HTML rendered, not shown as text
        assert snippet.strip() and not any(code in snippet for code in ("<mark>", "&lt;", "&amp;", "&#"))
        page.screenshot(path=str(ARTIFACTS / "03-search.png"), full_page=True)

        where = first.locator(".where").inner_text()
        assert "found by" in where and "keyword" in where and "score" not in where
        assert "score" in first.locator(".found-by").get_attribute("title")
        assert "q=" in page.url and "mode=hybrid" in page.url  # the search is in the URL
        chunks_before = page.locator(".result").count()
        page.check("input[name=per_document]")
        page.click("button:has-text('Search')")
        page.wait_for_function("location.hash.includes('per_document=1')")
        page.wait_for_function(  # not the empty list shown while the new search runs
            f"(n => n > 0 && n < {chunks_before})(document.querySelectorAll('.result').length)"
        )
        names = [link.get_attribute("title") for link in page.locator(".result a.open").all()]
        assert len(names) == len(set(names)) == 2, names  # each of the two documents once
        page.uncheck("input[name=per_document]")
        page.click("button:has-text('Search')")
        page.wait_for_function(f"document.querySelectorAll('.result').length === {chunks_before}")

        first.locator("a.open").click()
        page.wait_for_selector("#document-text mark.cited")
        page.wait_for_function("document.getElementById('page-image').naturalWidth > 0")
        assert page.evaluate("document.getElementById('page-image').src").startswith("blob:")
        cited_page = int(page.locator("#page-label").inner_text().split()[1])
        assert cited_page >= 1
        assert query.split()[0] in page.locator("#document-text").inner_text().lower()
        page.screenshot(path=str(ARTIFACTS / "04-document.png"))
        with page.expect_download() as download:
            page.click("#download")
        assert Path(download.value.path()).read_bytes() == pdf.read_bytes()

        page.go_back()  # Back restores and re-runs the search
        page.wait_for_selector(".result")
        assert page.locator("input[name=query]").input_value() == query
        assert pdf.name in page.locator(".result").first.inner_text()
        page.set_viewport_size({"width": 375, "height": 800})
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=str(ARTIFACTS / "03b-search-phone.png"))
        page.set_viewport_size({"width": 1280, "height": 900})

        page.click("text=Playground")
        page.click("button:has-text('Compare')")
        page.wait_for_selector(".heatmap td")
        assert page.locator(".heatmap td").first.inner_text() == "1.000"
        page.screenshot(path=str(ARTIFACTS / "05-playground.png"))

        page.click("text=Settings")
        page.wait_for_selector("dl.settings")
        assert "all-MiniLM-L6-v2" in page.locator("dl.settings").inner_text()
        page.screenshot(path=str(ARTIFACTS / "06-settings.png"))
        # styled like the rest: each label beside its value on wide screens, above it on a phone
        label, value = page.locator("dl.settings dt").first, page.locator("dl.settings dd").first
        assert label.bounding_box()["x"] + label.bounding_box()["width"] <= value.bounding_box()["x"]
        assert abs(label.bounding_box()["y"] - value.bounding_box()["y"]) <= 4
        page.set_viewport_size({"width": 375, "height": 800})
        assert value.bounding_box()["y"] > label.bounding_box()["y"] + label.bounding_box()["height"] - 1
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=str(ARTIFACTS / "06b-settings-phone.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 900})
        assert errors == []  # no script errors, no failed requests (favicon included)
        assert page.locator("link[rel=icon]").get_attribute("href").startswith("data:image/svg+xml")
        assert not any(address.endswith("/favicon.ico") for address in requested)
        assert not any("api_key" in address for address in requested)


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


def test_ui_folder_upload_keeps_paths_and_lists_rejected_files(browser, settings, tiny_encoder, tmp_path):
    """A folder with projA/README.md and projB/README.md, a GBK-encoded Chinese text, a program
    and a PNG named .txt: both READMEs are kept with their paths, the rejected files stay in the
    Failures list with their reason until dismissed, at desktop and phone width, behind an API key."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    root = tmp_path / "upload-root"
    for project, text in (
        ("projA", "# Project A\n\nAlpha readme."),
        ("projB", "# Project B\n\nBeta readme."),
    ):
        (root / project).mkdir(parents=True)
        (root / project / "README.md").write_text(text)
    (root / "notes-gbk.txt").write_bytes(
        "这是一个中文文本文件，用于测试编码识别。北京是中国的首都。".encode("gbk")
    )
    (root / "tool.exe").write_bytes(b"MZ\x90\x00\x03\x00\x00\x00")
    (root / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    sentences = " ".join(f"Sentence {i:03d} describes the guide in some detail." for i in range(120))
    (root / "projB" / "guide.md").write_text(f"# Guide\n\n<!-- editor note: hidden -->\n\n{sentences}\n")
    long_name = "a-very-long-file-name-" + "that-keeps-going-" * 8 + "end.md"
    (root / "projA" / long_name).write_text("# Long\n\nA file with a long name.")
    app = create_app(
        settings.model_copy(update={"home": tmp_path / "home", "api_keys": ["sesame"]}),
        encoders={"tiny": tiny_encoder},
    )
    with live_server(app, "/health") as url:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script("localStorage.setItem('embedhub-api-key', 'sesame')")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(url + "/")
        page.fill("input[name=name]", "folders")
        page.click("text=Create collection")
        page.wait_for_selector("#dropzone")
        assert page.locator("#choose-files").inner_text() == "Choose files"
        assert page.locator("#choose-folder").inner_text() == "Choose a folder"
        page.set_input_files("#folder-input", str(root))
        finished = (
            "[...document.querySelectorAll('#jobs tr')].every(r => /done|failed/.test(r.dataset.status))"
        )
        page.wait_for_function(
            f"document.querySelectorAll('#jobs tr').length >= 3 && {finished}", timeout=120_000
        )
        jobs = {row.locator("td.name").inner_text(): row.get_attribute("data-status")
                for row in page.locator("#jobs tr").all()}  # fmt: skip
        assert jobs["upload-root/projA/README.md"] == "done" and jobs["upload-root/projB/README.md"] == "done"
        assert jobs[f"upload-root/projA/{long_name}"] == "done"
        page.wait_for_function("document.querySelectorAll('#documents tr').length >= 3", timeout=30_000)
        documents = page.locator("#documents td.name").all_inner_texts()
        assert "upload-root/projA/README.md" in documents and "upload-root/projB/README.md" in documents

        text = page.locator("#failures").inner_text()
        assert "tool.exe" in text and "unsupported file type" in text
        assert "photo.txt" in text and "content" in text
        rejected = page.locator("#failures li.rejected").count()
        assert rejected >= 2

        # an upload where every file is rejected (the server answers 415) lists each file with its reason
        page.set_input_files(
            "#file-input",
            files=[
                {"name": "setup.exe", "mimeType": "application/octet-stream", "buffer": b"MZ\x90\x00"},
                {"name": "scan.pdf", "mimeType": "application/pdf", "buffer": b"just text"},
            ],
        )
        page.wait_for_function(
            f"document.querySelectorAll('#failures li.rejected').length === {rejected + 2}"
        )
        items = page.locator("#failures li.rejected").all_inner_texts()
        assert any("setup.exe" in item and "unsupported file type" in item for item in items)
        assert any(
            "scan.pdf" in item and "looks like text" in item and "setup.exe" not in item for item in items
        )
        rejected += 2

        # the same path with different content is kept beside the first, and the user is told so
        page.set_input_files(
            "#file-input", files=[{"name": "README.md", "mimeType": "text/markdown", "buffer": b"one"}]
        )
        page.wait_for_selector("#jobs td.name[title='README.md']")
        page.set_input_files(
            "#file-input", files=[{"name": "README.md", "mimeType": "text/markdown", "buffer": b"two"}]
        )
        page.wait_for_selector("#upload-notes li")
        assert "README.md saved as README (2).md" in page.locator("#upload-notes").inner_text()

        # nothing overflows sideways; long names are cut with an ellipsis and kept whole in the title
        page.screenshot(path=str(ARTIFACTS / "08-folder-upload.png"), full_page=True)
        overflow = "document.documentElement.scrollWidth <= window.innerWidth"
        assert page.evaluate(overflow)
        cell = page.locator(f"#jobs td.name[title='upload-root/projA/{long_name}']")
        assert cell.evaluate("c => c.scrollWidth > c.clientWidth")  # cut, not wrapping the row
        page.set_viewport_size({"width": 375, "height": 800})
        page.wait_for_timeout(7_000)  # longer than any toast lives: failures are not toasts
        assert page.locator("#failures li.rejected").count() == rejected
        assert page.evaluate(overflow)
        page.screenshot(path=str(ARTIFACTS / "09-folder-upload-phone.png"), full_page=True)
        nav = page.locator("header nav a").last.bounding_box()
        scrolls = "(n => n.scrollWidth > n.clientWidth)(document.querySelector('header nav'))"
        assert nav["x"] + nav["width"] <= 375 or page.evaluate(scrolls)

        # overlapping chunks are shown once, HTML comments not at all
        page.click("#documents a:text-is('upload-root/projB/guide.md')")
        page.wait_for_selector("#document-text")
        page.screenshot(path=str(ARTIFACTS / "10-markdown-document-phone.png"))
        assert page.evaluate(overflow)
        shown = page.locator("#document-text").inner_text()
        assert page.locator("p.muted").first.inner_text().split(" · ")[1] != "1 chunks"  # chunks overlap
        assert all(shown.count(f"Sentence {i:03d} ") == 1 for i in range(120)), shown
        assert "editor note" not in shown and "<!--" not in shown
        page.go_back()
        page.wait_for_selector("#failures li.rejected")

        page.reload()  # still listed after a reload, until dismissed
        page.wait_for_selector("#failures li.rejected")
        assert page.locator("#failures li.rejected").count() == rejected
        page.locator("#failures li.rejected button.dismiss-failure").first.click()
        page.wait_for_function(
            f"document.querySelectorAll('#failures li.rejected').length === {rejected - 1}"
        )
        assert errors == []
        assert not any("api_key" in address for address in requested)
        # GBK text is accepted like any text file (charset detection)
        assert jobs.get("upload-root/notes-gbk.txt") == "done", page.locator("#failures").inner_text()
        assert "upload-root/notes-gbk.txt" in documents
        context.close()


def test_job_rows_use_progress_and_offer_cancel_while_running(browser, settings, tiny_encoder, tmp_path):
    app = create_app(settings.model_copy(update={"home": tmp_path / "home"}), encoders={"tiny": tiny_encoder})
    with live_server(app, "/health") as url:
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_selector("#create-form")
        row = """(job) => {
            const body = document.createElement('tbody');
            body.innerHTML = jobRow(Object.assign({id: 'x', name: 'a.md', chunks: 0}, job));
            const r = body.firstElementChild;
            const buttons = [...r.querySelectorAll('button')].map(b => b.textContent);
            return [r.querySelector('progress').value, buttons];
        }"""
        assert page.evaluate(row, {"status": "embedding", "progress": 0.42}) == [0.42, ["Cancel"]]
        assert page.evaluate(row, {"status": "embedding"}) == [0, ["Cancel"]]  # nothing made up
        assert page.evaluate(row, {"status": "parsing"})[1] == ["Cancel"]
        assert page.evaluate(row, {"status": "queued"})[1] == ["Cancel"]
        assert page.evaluate(row, {"status": "done", "progress": 0.9}) == [1, []]
        # issue 27: a job cancelled or failed at 0.2% is drawn at 0.2%, not full
        assert page.evaluate(row, {"status": "cancelled", "progress": 0.002}) == [0.002, ["Retry"]]
        assert page.evaluate(row, {"status": "failed", "progress": 0.3}) == [0.3, ["Retry"]]
        assert page.evaluate(row, {"status": "failed"}) == [0, ["Retry"]]
        cell = """(job) => {
            const body = document.createElement('tbody');
            body.innerHTML = jobRow(Object.assign({id: 'x', name: 'a.md', chunks: 0}, job));
            return [...body.querySelectorAll('td.job-progress span')].map((s) => s.textContent).join(' | ');
        }"""
        running = {"status": "embedding", "progress": 0.002, "rate": 6.04, "eta_seconds": 3725}
        assert page.evaluate(cell, running) == "0.2% | 6.0 chunks/s · 1 h 2 min left"
        assert page.evaluate(cell, {"status": "cancelled", "progress": 0.002, "rate": 6.0}) == "0.2%"

        # the event reader parses event/data/id lines split anywhere, and reconnects after the
        # stream ends, sending the key as a header and the last event id
        received = page.evaluate(
            """() => new Promise((resolve) => {
                localStorage.setItem('embedhub-api-key', 'k');
                const bodies = [
                    'event: job\\nid: 7\\ndata: {"n":', '1}\\n\\n: keep-alive\\n\\n',
                    'event: job\\ndata: {"n":2}\\n\\n',
                ];
                const calls = [];
                window.fetch = async (path, options) => {
                    const headers = options.headers;
                    calls.push({ path, auth: headers.Authorization, last: headers['Last-Event-ID'] || null });
                    const chunks = calls.length === 1 ? bodies.slice(0, 2) : bodies.slice(2);
                    const stream = new ReadableStream({ start(c) {
                        for (const chunk of chunks) c.enqueue(new TextEncoder().encode(chunk));
                        c.close();
                    } });
                    return new Response(stream, { status: 200 });
                };
                const events = [];
                const controller = subscribe('/v1/collections/x/events', (type, data) => {
                    events.push([type, JSON.parse(data).n]);
                    if (events.length === 2) { controller.abort(); resolve({ events, calls }); }
                });
            })"""
        )
        assert received["events"] == [["job", 1], ["job", 2]]
        assert [call["auth"] for call in received["calls"]] == ["Bearer k", "Bearer k"]
        assert received["calls"][1]["last"] == "7" and "api_key" not in received["calls"][0]["path"]


def test_ask_page_streams_the_answer_and_links_citations_to_the_evidence(
    browser, settings, tiny_encoder, tmp_path
):
    """The Ask page with the stand-in chat endpoint: the answer arrives in pieces, [2] jumps to the
    second passage sent, a follow-up carries the conversation, a new conversation starts empty, and
    a missing or failing chat endpoint is said plainly."""
    from tests.chat_standin import ERROR_MESSAGE, chat_standin

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chat_standin("The alpha particle is a helium nucleus [2], unlike beta decay [1].") as standin:
        standin.chunk_delay = 0.05
        configured = settings.model_copy(
            update={"home": tmp_path / "home", "chat_url": standin.url, "chat_model": "qwen3:4b"}
        )
        app = create_app(configured, encoders={"tiny": tiny_encoder})
        with live_server(app, "/ready") as url:
            client = httpx.Client(base_url=url, timeout=60)
            assert (
                client.post("/v1/collections", json={"name": "physics", "model": "tiny"}).status_code == 201
            )
            files = [
                (
                    "files",
                    ("alpha.md", b"# Alpha\n\nThe alpha particle is a helium nucleus.", "text/markdown"),
                ),
                (
                    "files",
                    ("beta.md", b"# Beta\n\n## Decay\n\nBeta decay emits an electron.", "text/markdown"),
                ),
            ]
            assert client.post("/v1/collections/physics/files", files=files).status_code == 202
            wait_for_jobs(client, "physics", 2)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url + "/#/collection/physics")
            page.click("text=ask this collection")
            page.wait_for_selector("#ask-form")
            page.evaluate("""() => {
                window.answerUpdates = 0;
                new MutationObserver(() => window.answerUpdates++)
                    .observe(document.getElementById('conversation'), { childList: true, subtree: true });
            }""")
            page.fill("input[name=question]", "What is an alpha particle?")
            page.click("#ask-button")
            page.wait_for_selector(".turn .answer a.cite")
            page.wait_for_function("!document.getElementById('ask-button').disabled")
            assert page.locator(".turn .answer").inner_text() == standin.answer
            assert page.evaluate("window.answerUpdates") >= 5  # drawn piece by piece
            passages = page.locator("#evidence li").count()
            assert passages == standin.last_prompt.count("\n\n[") >= 2  # every passage sent
            sent_second = standin.last_prompt.split("[2] ", 1)[1].split(",", 1)[0].split("\n", 1)[0]
            page.click(".turn .answer a.cite[data-n='2']")
            page.wait_for_selector("#evidence-2.focus")
            assert sent_second in page.locator("#evidence-2 .where").inner_text()
            assert page.locator("#evidence li.cited").count() == 2
            page.screenshot(path=str(ARTIFACTS / "11-ask.png"), full_page=True)

            page.fill("input[name=question]", "And beta decay?")
            page.click("#ask-button")
            page.wait_for_function("document.querySelectorAll('.turn .answer a.cite').length === 4")
            history = [m["content"] for m in standin.requests[-1]["messages"][1:3]]
            assert history == [
                "What is an alpha particle?",
                standin.answer.replace(" [2]", "").replace(" [1]", ""),
            ]
            page.locator(".turn").first.locator("a.cite[data-n='1']").click()  # the first turn's evidence
            page.wait_for_selector("#evidence-1.focus")
            assert "question 1" in page.locator("#evidence-for").inner_text()

            page.click("a.open >> nth=0")  # the cited passage, then Back: the conversation is kept
            page.wait_for_selector("#document-text mark.cited")
            page.go_back()
            page.wait_for_selector(".turn >> nth=1")
            page.click("#new-conversation")
            assert page.locator(".turn").count() == 0

            standin.mode = "error"
            page.fill("input[name=question]", "What is an alpha particle?")
            page.click("#ask-button")
            page.wait_for_selector(".turn .error")
            assert ERROR_MESSAGE in page.locator(".turn .error").inner_text()
            assert page.locator("#evidence li").count() == passages  # the evidence stays readable
            page.screenshot(path=str(ARTIFACTS / "12-ask-chat-error.png"), full_page=True)

            app.state.settings = configured.model_copy(update={"chat_url": None})
            page.fill("input[name=question]", "What is an alpha particle?")
            page.click("#ask-button")
            page.wait_for_selector(".turn .notice")
            assert "EMBEDHUB_CHAT_URL" in page.locator(".turn .notice").inner_text()
            assert page.locator("#evidence li mark").count() > 0  # best sentences highlighted
            page.set_viewport_size({"width": 375, "height": 800})
            page.screenshot(path=str(ARTIFACTS / "13-ask-no-chat-phone.png"), full_page=True)
            wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
                .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
                .map((e) => `${e.tagName}.${e.className}#${e.id}`)""")  # what overflows, if anything
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), wide
            assert errors == []
            client.close()


def test_search_rerank_box_follows_the_servers_reranker(
    browser, settings, tiny_encoder, tiny_reranker, tmp_path
):
    from embedhub.kb.ingest import Ingestor

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    notes = tmp_path / "notes"
    notes.mkdir()
    for index, text in enumerate(
        ["Beijing is the capital of China.", "Gravity attracts bodies.", "北京是首都。"]
    ):
        (notes / f"note{index}.txt").write_text(text)
    with_reranker = create_app(
        settings.model_copy(update={"home": tmp_path / "home"}),
        encoders={"tiny": tiny_encoder},
        rerankers={"tiny-reranker": tiny_reranker},
    )
    with live_server(with_reranker, "/ready") as url:
        collection = with_reranker.state.knowledge_base.create("notes", tiny_encoder, model_reference="tiny")
        Ingestor(collection, tiny_encoder).ingest([notes])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/#/search?collection=notes")
        box = page.locator("input[name=rerank]")
        box.wait_for()
        assert box.is_enabled()
        page.fill("input[name=query]", "capital of China")
        box.check()
        page.click("button:has-text('Search')")
        page.wait_for_selector(".result .rerank-score")
        assert "rerank=1" in page.url
        assert page.locator(".result").count() == 3
        assert all("reranked" in text for text in page.locator(".result .found-by").all_inner_texts())
        page.screenshot(path=str(ARTIFACTS / "10-search-reranked.png"), full_page=True)
        assert not errors, errors
        page.close()
    without = create_app(
        settings.model_copy(update={"home": tmp_path / "home2"}), encoders={"tiny": tiny_encoder}
    )
    with live_server(without, "/ready") as url:
        page = browser.new_page()
        page.goto(url + "/#/search")
        page.locator("input[name=rerank]").wait_for()
        assert page.locator("input[name=rerank]").is_disabled()
        assert "embedhub serve --reranker" in page.locator("#rerank-label").get_attribute("title")
        page.close()


def test_table_chunks_are_drawn_as_tables_and_the_viewer_shows_a_split_tables_header_once(
    browser, settings, tiny_encoder, tmp_path
):
    from embedhub.kb.ingest import Ingestor

    folder = tmp_path / "tables"
    folder.mkdir()
    rows = "\n".join(f"| part-{i:02d} | supplier {i % 7} | {i * 3}.50 |" for i in range(60))
    (folder / "catalogue.md").write_text(
        f"# Catalogue\n\n| Part | Supplier | Price |\n|---|---|---|\n{rows}\n"
    )
    app = create_app(settings.model_copy(update={"home": tmp_path / "home"}), encoders={"tiny": tiny_encoder})
    with live_server(app, "/ready") as url:
        knowledge_base = app.state.knowledge_base
        collection = knowledge_base.create("parts", tiny_encoder, model_reference="tiny", chunk_tokens=96)
        Ingestor(collection, tiny_encoder).ingest([folder])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/#/search?collection=parts&q=part-42&mode=lexical&k=3")
        page.wait_for_selector(".result .chunk-table table")
        first = page.locator(".result").first
        assert first.locator("th").all_inner_texts() == ["Part", "Supplier", "Price"]
        assert "part-42" in first.locator("td").all_inner_texts()
        # the document viewer pieces the text together: the repeated header rows are not repeated there
        first.locator("a.open").click()
        page.wait_for_selector("#document-text mark.cited")
        text = page.locator("#document-text").inner_text()
        assert text.count("| Part | Supplier | Price |") == 1, text[:400]
        assert all(f"| part-{i:02d} |" in text for i in range(60))
        assert "part-42" in page.locator("#document-text mark.cited").inner_text()
        assert not errors, errors
        page.close()


def test_failures_are_kept_for_a_new_session_and_a_cancelled_job_shows_its_share(
    browser, settings, tiny_encoder, tmp_path
):
    """issue 27: failed uploads disappeared after a reload; a cancelled job was drawn full. The
    failures come from the server (a fresh browser session sees them) until dismissed; a running
    job shows its percent with chunks/s and time left, and once cancelled keeps its share."""
    from tests.kb.test_jobs import SlowEncoder, big_text

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    slow = SlowEncoder(tiny_encoder, 0.2)
    app = create_app(settings.model_copy(update={"home": tmp_path / "home"}), encoders={"tiny": slow})
    with live_server(app, "/health") as url, httpx.Client(base_url=url, timeout=60) as client:
        client.post("/v1/collections", json={"name": "kept", "model": "tiny", "chunk_tokens": 64})
        first = browser.new_context(viewport={"width": 1280, "height": 900})
        page = first.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/#/collection/kept")
        page.wait_for_selector("#dropzone")
        assert page.locator("#failures").inner_text().strip() == "none"
        page.set_input_files(
            "#file-input",
            files=[
                {"name": "empty.txt", "mimeType": "text/plain", "buffer": b""},
                {"name": "junk.txt", "mimeType": "text/plain", "buffer": bytes(range(256)) * 8},
                {"name": "statutes.txt", "mimeType": "text/plain", "buffer": big_text("article").encode()},
            ],
        )
        page.wait_for_function("document.querySelectorAll('#failures li.rejected').length === 2")
        page.wait_for_function(
            "/chunks\\/s/.test(document.querySelector('#jobs .job-pace')?.textContent || '')", timeout=120_000
        )
        pace = page.locator("#jobs .job-pace").first.inner_text()
        assert "left" in pace, pace
        page.screenshot(path=str(ARTIFACTS / "14-progress-and-failures.png"), full_page=True)
        page.set_viewport_size({"width": 375, "height": 800})
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=str(ARTIFACTS / "15-progress-and-failures-phone.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 900})
        page.click("#jobs button.cancel")
        page.wait_for_selector("#jobs tr[data-status=cancelled]", timeout=60_000)
        share = float(page.locator("#jobs tr[data-status=cancelled] progress").get_attribute("value"))
        job = client.get("/v1/collections/kept/jobs").json()["data"][0]
        assert job["status"] == "cancelled" and 0 < job["progress"] < 1
        assert share == job["progress"], (share, job["progress"])  # drawn at its share, not full
        assert page.locator("#jobs tr[data-status=cancelled] .job-pace").count() == 0
        first.close()

        # a fresh session (another browser, or after a restart of this one) sees the same failures
        second = browser.new_context(viewport={"width": 1280, "height": 900})
        page = second.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url + "/#/collection/kept")
        page.wait_for_selector("#failures li.rejected")
        items = page.locator("#failures li").all_inner_texts()
        assert any("empty.txt" in item and "empty" in item for item in items), items
        assert any("junk.txt" in item and "binary" in item for item in items), items
        page.screenshot(path=str(ARTIFACTS / "16-failures-new-session.png"), full_page=True)
        page.set_viewport_size({"width": 375, "height": 800})
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=str(ARTIFACTS / "17-failures-new-session-phone.png"), full_page=True)
        page.locator("#failures li:has-text('empty.txt') button.dismiss-failure").click()
        page.wait_for_function("document.querySelectorAll('#failures li.rejected').length === 1")
        page.reload()
        page.wait_for_selector("#failures li.rejected")
        assert [item for item in page.locator("#failures li").all_inner_texts() if "empty.txt" in item] == []
        names = [failure["name"] for failure in client.get("/v1/collections/kept/failures").json()["data"]]
        assert names == ["junk.txt"]
        assert errors == []
        second.close()
