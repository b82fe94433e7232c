"""Failed and skipped files are kept per collection until dismissed, through a restart: uploads
refused before they were stored (empty, binary junk, an unsupported type) and files whose ingest
failed (issue 27: they disappeared from the UI after a reload)."""

from __future__ import annotations

import httpx

from embedhub.server.app import create_app
from tests.live_server import live_server
from tests.server.test_kb_api import wait_for_jobs


def test_failures_survive_a_restart_and_can_be_dismissed(settings, tiny_encoder, tmp_path):
    home = settings.model_copy(update={"home": tmp_path / "home"})
    first = create_app(home, encoders={"tiny": tiny_encoder})
    with live_server(first, "/ready") as url, httpx.Client(base_url=url, timeout=60) as client:
        client.post("/v1/collections", json={"name": "notes", "model": "tiny"})
        files = [
            ("files", ("empty.txt", b"", "text/plain")),
            ("files", ("junk.txt", bytes(range(256)) * 8, "text/plain")),
            ("files", ("data.xyz", b"no loader", "application/octet-stream")),
            ("files", ("broken.pdf", b"%PDF-1.4\nnot really a pdf", "application/pdf")),
            ("files", ("good.md", b"# Good\n\nA fine note.", "text/markdown")),
        ]
        uploaded = client.post("/v1/collections/notes/files", files=files).json()
        assert len(uploaded["rejected"]) == 3 and len(uploaded["jobs"]) == 2
        wait_for_jobs(client, "notes", 2)
    # a restart: a new app on the same home
    restarted = create_app(home, encoders={"tiny": tiny_encoder})
    with live_server(restarted, "/ready") as url, httpx.Client(base_url=url, timeout=60) as client:
        failures = client.get("/v1/collections/notes/failures").json()["data"]
        by_name = {failure["name"]: failure for failure in failures}
        assert set(by_name) == {"empty.txt", "junk.txt", "data.xyz", "broken.pdf"}
        assert "empty" in by_name["empty.txt"]["reason"] and by_name["empty.txt"]["stage"] == "upload"
        assert "binary" in by_name["junk.txt"]["reason"]
        assert "unsupported file type" in by_name["data.xyz"]["reason"]
        assert by_name["broken.pdf"]["stage"] == "ingest" and by_name["broken.pdf"]["status"] == "failed"
        one = client.delete(f"/v1/collections/notes/failures/{by_name['empty.txt']['id']}")
        assert one.status_code == 200 and one.json() == {"dismissed": 1}
        again = client.delete(f"/v1/collections/notes/failures/{by_name['empty.txt']['id']}")
        assert again.status_code == 404 and "GET .../failures lists them" in again.text
        left = {failure["name"] for failure in client.get("/v1/collections/notes/failures").json()["data"]}
        assert left == {"junk.txt", "data.xyz", "broken.pdf"}
        assert client.delete("/v1/collections/notes/failures").json() == {"dismissed": 3}
        assert client.get("/v1/collections/notes/failures").json()["data"] == []
        documents = client.get("/v1/collections/notes/documents").json()["data"]
        assert [document["path"].rsplit("/", 1)[-1] for document in documents] == ["good.md"]
        assert client.get("/v1/collections/nope/failures").status_code == 404
