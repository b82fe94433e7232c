"""The knowledge-base HTTP API: every route, auth, upload limits and hostile uploads, retry."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from embedhub.kb.uploads import MAX_DEPTH, safe_relative_path
from embedhub.server.app import create_app
from tests.kb.conftest import make_docx, make_pdf
from tests.kb.test_jobs import SlowEncoder, big_text, wait_until
from tests.live_server import live_server


def wait_for_jobs(client, name, count, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = client.get(f"/v1/collections/{name}/jobs").json()["data"]
        if len(jobs) >= count and all(job["status"] in ("done", "failed", "cancelled") for job in jobs):
            return jobs
        time.sleep(0.1)
    raise AssertionError(f"jobs did not finish: {jobs}")


@pytest.fixture(scope="module")
def api(settings, tiny_encoder, tmp_path_factory):
    home = tmp_path_factory.mktemp("api-home")
    app = create_app(
        settings.model_copy(update={"home": home, "max_upload_bytes": 256 * 1024}),
        encoders={"tiny": tiny_encoder},
    )
    with live_server(app, "/ready") as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def test_collection_upload_search_documents(api, tmp_path):
    created = api.post("/v1/collections", json={"name": "papers", "model": "tiny", "dimensions": 32})
    assert created.status_code == 201 and created.json()["dimensions"] == 32
    assert api.post("/v1/collections", json={"name": "papers"}).status_code == 409
    assert api.post("/v1/collections", json={"name": "../etc"}).status_code == 400
    pdf = make_pdf(
        tmp_path / "paper.pdf", ["Quantum computing basics.", "Entanglement explained on page two."]
    )
    docx = make_docx(tmp_path / "notes.docx")
    files = [
        ("files", ("paper.pdf", pdf.read_bytes(), "application/pdf")),
        ("files", ("notes.docx", docx.read_bytes(), "application/octet-stream")),
        ("files", ("readme.md", b"# Readme\n\nHello markdown world.", "text/markdown")),
    ]
    uploaded = api.post("/v1/collections/papers/files", files=files)
    assert uploaded.status_code == 202, uploaded.text
    assert len(uploaded.json()["jobs"]) == 3
    jobs = wait_for_jobs(api, "papers", 3)
    assert {job["status"] for job in jobs} == {"done"}
    assert api.get(f"/v1/jobs/{jobs[0]['id']}").json()["status"] == "done"

    found = api.post(
        "/v1/collections/papers/search", json={"query": "entanglement", "mode": "lexical", "k": 3}
    )
    result = found.json()["results"][0]
    assert result["name"] == "paper.pdf" and result["page_start"] == 2 and "<mark>" in result["snippet"]
    hybrid = api.post("/v1/collections/papers/search", json={"query": "markdown", "file_types": ["markdown"]})
    assert hybrid.status_code == 200 and all(r["file_type"] == "markdown" for r in hybrid.json()["results"])
    assert api.post("/v1/collections/papers/search", json={"query": ""}).status_code == 422
    dense = {"query": "quantum", "mode": "dense", "k": 20}
    every = api.post("/v1/collections/papers/search", json=dense)
    distinct = api.post("/v1/collections/papers/search", json={**dense, "per_document": 1}).json()["results"]
    assert len(every.json()["results"]) > len(distinct) == 3  # three documents, the pdf has two pages
    assert len({r["doc_id"] for r in distinct}) == 3
    rrf = api.post("/v1/collections/papers/search", json={"query": "quantum", "fusion": "rrf"})
    assert rrf.status_code == 200 and rrf.json()["results"]
    too_heavy = api.post("/v1/collections/papers/search", json={"query": "q", "dense_weight": 2})
    assert too_heavy.status_code == 422

    documents = api.get("/v1/collections/papers/documents").json()["data"]
    assert {d["name"] for d in documents} == {"paper.pdf", "notes.docx", "readme.md"}
    pdf_doc = next(d for d in documents if d["name"] == "paper.pdf")
    detail = api.get(f"/v1/collections/papers/documents/{pdf_doc['doc_id']}").json()
    assert detail["pages"] == 2 and detail["chunks"][0]["page_start"] == 1
    image = api.get(f"/v1/collections/papers/documents/{pdf_doc['doc_id']}/pages/2.png")
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    assert api.get(f"/v1/collections/papers/documents/{pdf_doc['doc_id']}/pages/9.png").status_code == 400
    original = api.get(f"/v1/collections/papers/documents/{pdf_doc['doc_id']}/file")
    assert original.content == pdf.read_bytes()

    # the same file uploaded again replaces, never duplicates
    api.post("/v1/collections/papers/files", files=[files[2]])
    wait_for_jobs(api, "papers", 4)
    assert len(api.get("/v1/collections/papers/documents").json()["data"]) == 3

    deleted = api.delete(f"/v1/collections/papers/documents/{pdf_doc['doc_id']}")
    assert deleted.status_code == 200
    assert api.get(f"/v1/collections/papers/documents/{pdf_doc['doc_id']}").status_code == 404
    info = api.get("/v1/collections/papers").json()
    assert info["done"] == 2
    assert any(c["name"] == "papers" for c in api.get("/v1/collections").json()["data"])
    assert api.delete("/v1/collections/papers").status_code == 200
    assert api.get("/v1/collections/papers").status_code == 404


def test_hostile_and_oversized_uploads(api):
    api.post("/v1/collections", json={"name": "guarded", "model": "tiny"})
    traversal = api.post(
        "/v1/collections/guarded/files",
        files=[("files", ("../../../../tmp/evil.txt", b"harmless text", "text/plain"))],
    )
    assert traversal.status_code == 202
    stored = traversal.json()["jobs"][0]["path"]
    assert "/collections/guarded/uploads/tmp/evil.txt" in stored and ".." not in stored
    mislabelled = api.post(
        "/v1/collections/guarded/files", files=[("files", ("report.pdf", b"plain text", "x"))]
    )
    assert mislabelled.status_code == 415 and "looks like text" in mislabelled.json()["error"]["message"]
    executable = api.post(
        "/v1/collections/guarded/files", files=[("files", ("tool.exe", b"MZ\x00\x00", "x"))]
    )
    assert executable.status_code == 415
    empty = api.post("/v1/collections/guarded/files", files=[("files", ("empty.txt", b"", "text/plain"))])
    assert empty.status_code == 400
    too_big = api.post(
        "/v1/collections/guarded/files", files=[("files", ("big.txt", b"a " * 200_000, "text/plain"))]
    )
    assert too_big.status_code == 413 and "limit" in too_big.json()["error"]["message"]
    mixed = api.post(
        "/v1/collections/guarded/files",
        files=[("files", ("ok.txt", b"fine", "text/plain")), ("files", ("bad.pdf", b"nope", "x"))],
    )
    assert mixed.status_code == 202 and len(mixed.json()["jobs"]) == 1 and len(mixed.json()["rejected"]) == 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("projA/README.md", "projA/README.md"),
        ("../../etc/passwd", "etc/passwd"),
        ("/absolute/notes.md", "absolute/notes.md"),
        ("C:\\Users\\x\\doc.pdf", "Users/x/doc.pdf"),
        ("a/./b/../c.md", "a/b/c.md"),
        ("dir\x07/\x1bname.md", "dir/name.md"),
        ("../..", "upload.txt"),
        ("a//b/ /c.txt", "a/b/c.txt"),
    ],
)
def test_safe_relative_path(raw, expected):
    assert safe_relative_path(raw) == expected


def test_safe_relative_path_bounds_depth_and_part_length():
    deep = safe_relative_path("/".join(f"d{i}" for i in range(30)) + "/file.md")
    assert deep.split("/") == [f"d{i}" for i in range(30 - MAX_DEPTH, 30)] + ["file.md"]
    long = safe_relative_path("x" * 500 + "/" + "中文" * 200 + ".txt")
    parts = long.split("/")
    assert all(len(part.encode()) <= 200 for part in parts)
    assert parts[1].startswith("中文") and parts[1].endswith(".txt")


def test_upload_naming_never_overwrites_a_different_document(api):
    api.post("/v1/collections", json={"name": "naming", "model": "tiny"})
    url = "/v1/collections/naming/files"
    folder = api.post(
        url,
        files=[
            ("files", ("projA/README.md", b"# A\n\nalpha project", "text/markdown")),
            ("files", ("projB/README.md", b"# B\n\nbeta project", "text/markdown")),
        ],
    ).json()["jobs"]
    assert [job["stored_as"] for job in folder] == ["projA/README.md", "projB/README.md"]
    assert [job["name"] for job in folder] == ["projA/README.md", "projB/README.md"]

    first = api.post(url, files=[("files", ("README.md", b"first readme", "text/markdown"))]).json()["jobs"][
        0
    ]
    assert first["stored_as"] == "README.md" and first["renamed_from"] is None and not first["replaced"]
    second = api.post(url, files=[("files", ("README.md", b"second readme", "text/markdown"))]).json()["jobs"]
    assert second[0]["stored_as"] == "README (2).md" and second[0]["renamed_from"] == "README.md"
    # the same content again is the same document, wherever it was stored
    again = api.post(url, files=[("files", ("README.md", b"second readme", "text/markdown"))]).json()["jobs"]
    assert (
        again[0]["stored_as"] == "README (2).md"
        and again[0]["identical"]
        and again[0]["renamed_from"] is None
    )
    replaced = api.post(
        url, files=[("files", ("README.md", b"third readme", "x"))], data={"on_conflict": "replace"}
    ).json()["jobs"][0]
    assert replaced["stored_as"] == "README.md" and replaced["replaced"] and replaced["renamed_from"] is None
    rejected = api.post(url, files=[("files", ("README.md", b"fourth", "x"))], data={"on_conflict": "reject"})
    assert rejected.status_code == 409 and "already exists" in rejected.json()["error"]["message"]
    mixed = api.post(
        url,
        files=[("files", ("README.md", b"fifth", "x")), ("files", ("new.md", b"new file", "x"))],
        data={"on_conflict": "reject"},
    ).json()
    assert [r["status"] for r in mixed["rejected"]] == [409] and mixed["jobs"][0]["stored_as"] == "new.md"
    assert (
        api.post(url, files=[("files", ("a.md", b"x", "x"))], data={"on_conflict": "bogus"}).status_code
        == 422
    )

    clash = api.post(url, files=[("files", ("README.md/inside.md", b"x", "x"))])
    assert clash.status_code == 409 and "README.md" in clash.json()["error"]["message"]

    wait_for_jobs(api, "naming", 7)
    documents = api.get("/v1/collections/naming/documents").json()["data"]
    assert sorted(d["relative_path"] for d in documents) == [
        "README (2).md", "README.md", "new.md", "projA/README.md", "projB/README.md",
    ]  # fmt: skip
    texts = {
        d["relative_path"]: api.get(f"/v1/collections/naming/documents/{d['doc_id']}/file").content
        for d in documents
    }
    assert texts["README.md"] == b"third readme" and texts["README (2).md"] == b"second readme"
    assert texts["projA/README.md"] != texts["projB/README.md"]
    nested = next(d for d in documents if d["relative_path"] == "projA/README.md")
    assert api.delete(f"/v1/collections/naming/documents/{nested['doc_id']}").status_code == 200
    assert not Path(nested["path"]).parent.exists()  # the emptied projA/ folder is removed too


def test_failed_file_can_be_retried(api, tmp_path):
    api.post("/v1/collections", json={"name": "retry", "model": "tiny"})
    broken = b"%PDF-1.4\nthis is not really a pdf"
    job = api.post("/v1/collections/retry/files", files=[("files", ("doc.pdf", broken, "x"))]).json()["jobs"][
        0
    ]
    failed = wait_for_jobs(api, "retry", 1)[0]
    assert failed["status"] == "failed" and "not a readable PDF" in failed["error"]
    assert api.post(f"/v1/jobs/{job['id']}/cancel").status_code == 409
    # the user fixes the file on the server, then retries the job
    from pathlib import Path

    make_pdf(Path(job["path"]), ["Now it is a real PDF."])
    retried = api.post(f"/v1/jobs/{job['id']}/retry")
    assert retried.status_code == 200
    done = wait_for_jobs(api, "retry", 1)[0]
    assert done["status"] == "done" and done["attempts"] == 2
    assert api.post("/v1/jobs/nope/retry").status_code == 409


def test_folder_registration_and_events(api, tmp_path):
    folder = tmp_path / "server-folder"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha text")
    (folder / "b.md").write_text("# B\n\nbeta text")
    (folder / "c.bin").write_bytes(b"\x00\x01")
    api.post("/v1/collections", json={"name": "folder", "model": "tiny"})
    registered = api.post("/v1/collections/folder/folders", json={"path": str(folder)})
    assert registered.status_code == 202 and len(registered.json()["jobs"]) == 2
    assert registered.json()["unsupported"][0].endswith("c.bin")
    wait_for_jobs(api, "folder", 2)
    seen = []
    with api.stream("GET", "/v1/collections/folder/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
            if len(seen) >= 2:
                break
    assert {event["status"] for event in seen} == {"done"}
    missing = api.post("/v1/collections/folder/folders", json={"path": str(tmp_path / "missing")})
    assert missing.status_code == 400


def test_routes_require_the_key_when_configured(settings, tiny_encoder, tmp_path):
    app = create_app(
        settings.model_copy(update={"home": tmp_path, "api_keys": ["k1"]}), encoders={"tiny": tiny_encoder}
    )
    with live_server(app, "/health") as url:
        for method, path in [("GET", "/v1/collections"), ("POST", "/v1/collections"), ("GET", "/v1/info"),
                             ("POST", "/v1/collections/x/search"), ("GET", "/v1/collections/x/events"),
                             ("POST", "/v1/jobs/x/retry"), ("POST", "/v1/collections/x/ask")]:  # fmt: skip
            assert httpx.request(method, url + path).status_code == 401, path
        headers = {"Authorization": "Bearer k1"}
        assert httpx.get(url + "/v1/collections", headers=headers).status_code == 200
        # a key in the query string would land in access logs and browser history: refused
        assert httpx.get(url + "/v1/collections?api_key=k1").status_code == 401
        assert httpx.get(url + "/v1/collections/x/events?api_key=k1").status_code == 401
        assert httpx.get(url + "/").status_code == 200  # the UI shell itself is static; it asks for the key


def test_ui_assets_have_no_external_references():
    from embedhub.server.app import UI_FOLDER

    for path in UI_FOLDER.iterdir():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path.name


def test_openapi_lists_kb_routes(api):
    paths = api.get("/openapi.json").json()["paths"]
    for path in ("/v1/collections", "/v1/collections/{name}/files", "/v1/collections/{name}/search",
                 "/v1/jobs/{job_id}/retry", "/v1/collections/{name}/events"):  # fmt: skip
        assert path in paths


def test_api_docs_are_served_without_a_cdn(api):
    page = api.get("/docs")
    assert page.status_code == 200 and "/_swagger/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    assert api.get("/_swagger/swagger-ui-bundle.js").status_code == 200


class RecordingEncoder(SlowEncoder):
    """Records the thread of every forward pass (and can be slow)."""

    def __init__(self, inner, pause: float = 0.0) -> None:
        super().__init__(inner, pause)
        self.threads: set[str] = set()

    def embed_token_ids(self, batch):
        self.threads.add(threading.current_thread().name)
        return super().embed_token_ids(batch)


def metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_kb_traffic_goes_through_the_model_queue(settings, tiny_encoder, tmp_path):
    recording = RecordingEncoder(tiny_encoder)
    app = create_app(settings.model_copy(update={"home": tmp_path}), encoders={"tiny": recording})
    with live_server(app, "/ready") as url, httpx.Client(base_url=url, timeout=60) as client:
        client.post("/v1/collections", json={"name": "queued", "model": "tiny"})
        text = b"Lighthouses guide ships.\n\nThe queue merges requests into batches."
        client.post("/v1/collections/queued/files", files=[("files", ("a.txt", text, "text/plain"))])
        assert wait_for_jobs(client, "queued", 1)[0]["status"] == "done"
        for _ in range(2):  # the second search is answered from the service's cache
            found = client.post("/v1/collections/queued/search", json={"query": "ships", "mode": "dense"})
            assert found.status_code == 200 and found.json()["results"]
        metrics = client.get("/metrics").text
    assert metric(metrics, "embedhub_batch_items_count") >= 2
    assert metric(metrics, "embedhub_cache_misses{") >= 2 and metric(metrics, "embedhub_cache_hits{") >= 1
    assert recording.threads and all(name.startswith("embedhub-batch-") for name in recording.threads), (
        recording.threads
    )


def test_running_job_cancel_and_drop_over_http(settings, tiny_encoder, tmp_path, monkeypatch):
    from embedhub.kb import ingest

    monkeypatch.setattr(ingest, "BATCH_CHUNKS", 4)
    slow = RecordingEncoder(tiny_encoder, pause=0.05)
    app = create_app(settings.model_copy(update={"home": tmp_path}), encoders={"tiny": slow})
    big = big_text("capybara").encode()
    with live_server(app, "/ready") as url, httpx.Client(base_url=url, timeout=60) as client:
        client.post("/v1/collections", json={"name": "busy", "model": "tiny", "chunk_tokens": 64})
        job = client.post("/v1/collections/busy/files", files=[("files", ("big.txt", big, "x"))]).json()
        job_id = job["jobs"][0]["id"]
        wait_until(lambda: client.get(f"/v1/jobs/{job_id}").json()["chunks"] >= 8)
        running = client.get(f"/v1/jobs/{job_id}").json()
        assert running["status"] == "embedding" and 0 < running["progress"] < 1
        cancelled = client.post(f"/v1/jobs/{job_id}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert not (tmp_path / "collections" / "busy" / "uploads" / "big.txt").exists()
        lexical = {"query": "capybara", "mode": "lexical"}
        assert client.post("/v1/collections/busy/search", json=lexical).json()["results"] == []
        again = client.post("/v1/collections/busy/files", files=[("files", ("big.txt", big, "x"))]).json()
        wait_until(lambda: client.get(f"/v1/jobs/{again['jobs'][0]['id']}").json()["chunks"] >= 4)
        dropped = client.delete("/v1/collections/busy")
        assert dropped.status_code == 200
        assert client.get("/v1/collections/busy").status_code == 404
        assert client.get(f"/v1/jobs/{job_id}").status_code == 409  # forgotten with the collection


def test_server_folders_are_limited_to_the_configured_roots(settings, tiny_encoder, tmp_path):
    allowed, secret = tmp_path / "allowed", tmp_path / "secret"
    allowed.mkdir()
    secret.mkdir()
    (allowed / "a.txt").write_text("allowed alpha")
    (allowed / "b.txt").write_text("allowed beta")
    (secret / "key.txt").write_text("the secret key")
    (allowed / "linked-dir").symlink_to(secret, target_is_directory=True)
    (allowed / "linked.txt").symlink_to(secret / "key.txt")
    public = settings.model_copy(update={"home": tmp_path / "home", "host": "0.0.0.0", "api_keys": ["k"]})
    headers = {"Authorization": "Bearer k"}

    # bound beyond loopback with no roots configured: no server folder at all
    with live_server(create_app(public, encoders={"tiny": tiny_encoder}), "/ready") as url:
        client = httpx.Client(base_url=url, timeout=60, headers=headers)
        client.post("/v1/collections", json={"name": "c", "model": "tiny"})
        refused = client.post("/v1/collections/c/folders", json={"path": str(allowed)})
        assert refused.status_code == 403 and "EMBEDHUB_FOLDER_ROOTS" in refused.json()["error"]["message"]

    rooted = public.model_copy(update={"folder_roots": [allowed], "home": tmp_path / "home2"})
    with live_server(create_app(rooted, encoders={"tiny": tiny_encoder}), "/ready") as url:
        client = httpx.Client(base_url=url, timeout=60, headers=headers)
        client.post("/v1/collections", json={"name": "c", "model": "tiny"})
        for escape in (secret, allowed / ".." / "secret", allowed / "linked-dir", allowed / "linked.txt"):
            answer = client.post("/v1/collections/c/folders", json={"path": str(escape)})
            assert answer.status_code == 403, escape
            assert "EMBEDHUB_FOLDER_ROOTS" in answer.json()["error"]["message"]
        accepted = client.post("/v1/collections/c/folders", json={"path": str(allowed)})
        assert accepted.status_code == 202
        body = accepted.json()
        assert sorted(Path(j["path"]).name for j in body["jobs"]) == ["a.txt", "b.txt"]
        assert {Path(r["path"]).name for r in body["refused"]} == {"linked.txt"}  # linked-dir: not walked
        wait_for_jobs(client, "c", 2)
        listed = client.get("/v1/collections/c/documents").json()["data"]
        documents = {Path(d["path"]).name: d["doc_id"] for d in listed}
        assert client.get(f"/v1/collections/c/documents/{documents['a.txt']}/file").text == "allowed alpha"
        # a file swapped for a symlink after ingestion is not served
        (allowed / "b.txt").unlink()
        (allowed / "b.txt").symlink_to(secret / "key.txt")
        swapped = client.get(f"/v1/collections/c/documents/{documents['b.txt']}/file")
        assert swapped.status_code == 403 and "secret" not in swapped.text


def test_legacy_encoded_uploads_are_accepted_and_report_their_encoding(api):
    api.post("/v1/collections", json={"name": "encodings", "model": "tiny"})
    files = [
        ("files", ("chinese.txt", "知识库检索支持中文文本。第二句话。".encode("gbk"), "text/plain")),
        ("files", ("western.txt", "“Quotes” cost 5 € at the café.".encode("cp1252"), "text/plain")),
    ]
    uploaded = api.post("/v1/collections/encodings/files", files=files)
    assert uploaded.status_code == 202 and uploaded.json()["rejected"] == [], uploaded.text
    assert {job["status"] for job in wait_for_jobs(api, "encodings", 2)} == {"done"}
    documents = {d["name"]: d for d in api.get("/v1/collections/encodings/documents").json()["data"]}
    assert documents["chinese.txt"]["encoding"] == "gb18030"
    assert documents["western.txt"]["encoding"] == "cp1252"
    detail = api.get(f"/v1/collections/encodings/documents/{documents['western.txt']['doc_id']}").json()
    assert "€" in detail["chunks"][0]["text"] and detail["encoding"] == "cp1252"
