"""Ingestion on Ray (kb/distributed.py) against a real two-node Ray cluster on 127.0.0.1: the same
rows and vectors as in-process ingestion, re-runs that embed nothing, workers killed mid-ingest,
the CLI's `--ray auto`, and the message without Ray installed."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from embedhub.cli import app
from embedhub.kb import distributed
from embedhub.kb.distributed import IngestActor, RayIngest, loopback_only
from embedhub.kb.ingest import Ingestor, Progress

ray = pytest.importorskip("ray", reason="the ray extra is not installed (it is part of the dev extra)")


@pytest.fixture(scope="module")
def cluster():
    """A head node and one worker node, one CPU each, on 127.0.0.1, and this process connected to
    it once (the ingests below use that connection, as in a notebook); all shut down after the
    module. The CLI test runs its own process."""
    from ray.cluster_utils import Cluster

    with loopback_only():
        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "include_dashboard": False, "node_ip_address": "127.0.0.1"})  # fmt: skip
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
    yield cluster
    if ray.is_initialized():
        ray.shutdown()
    cluster.shutdown()


@pytest.fixture
def ray_settings(settings, tmp_path):
    return settings.model_copy(update={"home": tmp_path / "home", "threads": 1})


def write_corpus(folder: Path, files: int = 12) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(files):
        body = " ".join(f"term{(number * 7 + word) % 90} item{number}" for word in range(120))
        (folder / f"note{number:03}.md").write_text(
            f"# Note {number}\n\n{body}\n\n## Details\n\nThe detail of note {number} is {number * 3}.\n"
        )
    (folder / "broken.pdf").write_text("not a pdf")
    return folder


def create(knowledge_base, name, tiny_encoder, tiny_model_dir):
    return knowledge_base.create(
        name, tiny_encoder, model_reference=str(tiny_model_dir), chunk_tokens=64, chunk_overlap=8
    )


def stored(collection) -> dict[tuple[str, int], tuple]:
    """(path, chunk index) -> everything stored of the chunk but its generation, and its vector."""
    rows = {}
    for record in collection.manifest.documents():
        if record.status != "done":
            continue
        chunks = collection.store.rows_of(record.doc_id)
        vectors = collection.store.vectors_of([row.id for row in chunks])
        for row in chunks:
            key = (row.path, row.chunk_index)
            assert key not in rows, f"chunk {key} is stored twice"
            fields = (row.doc_id, row.text, tuple(row.terms), row.char_start, row.char_end,
                      row.page_start, row.page_end, tuple(row.heading_path), row.file_type)  # fmt: skip
            rows[key] = (fields, vectors[row.id])
    return rows


def chunks_per_document(collection) -> Counter:
    return Counter(row.doc_id for record in collection.manifest.documents()
                   for row in collection.store.rows_of(record.doc_id))  # fmt: skip


def test_ray_ingest_equals_local_ingest_and_reruns_embed_nothing(
    cluster, knowledge_base, tiny_encoder, tiny_model_dir, ray_settings, tmp_path, monkeypatch
):
    monkeypatch.setattr(distributed, "UNIT_FILES", 3)  # 13 files: work for both actors
    corpus = write_corpus(tmp_path / "corpus")
    local = create(knowledge_base, "local", tiny_encoder, tiny_model_dir)
    remote = create(knowledge_base, "on-ray", tiny_encoder, tiny_model_dir)
    expected = Ingestor(local, tiny_encoder).ingest([corpus]).summary()

    runner = RayIngest(remote, ray_settings, address=cluster.address)
    summary = runner.ingest([corpus]).summary()
    assert runner.started == 2, "one actor per CPU of the two nodes"
    assert len(set(runner.worker_pids.values())) == 2
    for key in ("added", "failed", "chunks", "tokens"):
        assert summary[key] == expected[key], key
    assert summary["failures"][0]["path"].endswith("broken.pdf")
    assert summary["failures"][0]["error"] == expected["failures"][0]["error"]
    ours, theirs = stored(remote), stored(local)
    assert ours.keys() == theirs.keys() and len(ours) == expected["chunks"]
    for key, (fields, vector) in ours.items():
        assert fields == theirs[key][0]
        np.testing.assert_allclose(vector, theirs[key][1], atol=1e-5)
    records = {r.path: (r.file_hash, r.chunks, r.tokens, r.status) for r in remote.manifest.documents()}
    assert records == {
        r.path: (r.file_hash, r.chunks, r.tokens, r.status) for r in local.manifest.documents()
    }

    again = RayIngest(remote, ray_settings, address=cluster.address)
    rerun = again.ingest([corpus]).summary()
    assert rerun["skipped"] == expected["added"] and rerun["added"] == rerun["updated"] == 0
    assert rerun["failed"] == 1 and rerun["embedded_chunks"] == 0, "only the broken file is tried again"
    (corpus / "broken.pdf").unlink()
    unchanged = RayIngest(remote, ray_settings, address=cluster.address)
    assert unchanged.ingest([corpus]).summary()["skipped"] == expected["added"]
    assert unchanged.started == 0, "nothing changed: no actor started, no model loaded"

    (corpus / "note000.md").write_text("# Changed\n\nA different note now.\n")
    (corpus / "note001.md").unlink()
    synced = RayIngest(remote, ray_settings, address=cluster.address, actors=1)
    changed = synced.ingest([corpus], sync=True).summary()
    assert (changed["updated"], changed["skipped"]) == (1, expected["added"] - 2)
    assert changed["removed"] == 2, "note001.md and the record of broken.pdf"
    assert synced.started == 1
    assert remote.store.count() == sum(r.chunks for r in remote.manifest.documents() if r.status == "done")
    assert ray.is_initialized(), "the caller's own connection is left open"


class _KillOnce(Progress):
    """Kills one loaded worker's process (SIGKILL: a crash, not a shutdown) at the first file
    handed out after results started coming back, so that worker holds files in flight."""

    def __init__(self, after: int) -> None:
        self.runner: RayIngest | None = None
        self.after, self.handed_out, self.killed = after, 0, []

    def stage(self, path, stage):
        self.handed_out += 1
        if self.handed_out > self.after and not self.killed and self.runner.worker_pids:
            pid = next(iter(self.runner.worker_pids.values()))
            os.kill(pid, signal.SIGKILL)
            self.killed.append(pid)


def test_a_worker_killed_mid_ingest_loses_and_duplicates_nothing(
    cluster, knowledge_base, tiny_encoder, tiny_model_dir, ray_settings, tmp_path, monkeypatch
):
    monkeypatch.setattr(distributed, "UNIT_FILES", 2)
    corpus = write_corpus(tmp_path / "corpus", files=24)
    collection = create(knowledge_base, "killed", tiny_encoder, tiny_model_dir)
    progress = _KillOnce(after=2 * distributed.IN_FLIGHT_PER_ACTOR * distributed.UNIT_FILES)
    runner = RayIngest(collection, ray_settings, progress, address=cluster.address)
    progress.runner = runner
    summary = runner.ingest([corpus]).summary()

    assert progress.killed and runner.replaced >= 1
    assert (summary["added"], summary["failed"]) == (24, 1)
    per_document = chunks_per_document(collection)
    committed = {r.doc_id: r.chunks for r in collection.manifest.documents() if r.status == "done"}
    assert len(committed) == 24 and dict(per_document) == committed, "every document exactly once"
    stored(collection)  # no (path, chunk) twice
    assert not collection.manifest.pending(), "nothing left half-written"


class _CrashOnPoison(IngestActor):
    """A worker that dies (its process exits) whenever it is given the poison file."""

    def prepare(self, files):
        if any(Path(path).name == "poison.md" for path, _, _ in files):
            os._exit(1)
        return super().prepare(files)


def test_a_file_that_keeps_killing_its_worker_is_reported_failed(
    cluster, knowledge_base, tiny_encoder, tiny_model_dir, ray_settings, tmp_path
):
    corpus = write_corpus(tmp_path / "corpus", files=4)
    (corpus / "poison.md").write_text("# Poison\n\nThis file kills every worker that reads it.\n")
    collection = create(knowledge_base, "poison", tiny_encoder, tiny_model_dir)
    runner = RayIngest(collection, ray_settings, address=cluster.address)
    runner.actor_class = _CrashOnPoison
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import tests/
    try:
        summary = runner.ingest([corpus]).summary()
    finally:
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert (summary["added"], summary["failed"]) == (4, 2)
    reasons = {Path(f["path"]).name: f["error"] for f in summary["failures"]}
    assert f"died {distributed.ATTEMPTS} times" in reasons["poison.md"]
    assert collection.manifest.get(collection.manifest.documents()[0].doc_id) is not None
    assert len(chunks_per_document(collection)) == 4


def test_kb_add_ray_auto_in_human_output(tmp_path, tiny_model_dir):
    """`embedhub kb add NAME PATH --ray auto` as people type it, in a process of its own: a local
    Ray started on 127.0.0.1 and stopped at the end."""
    import subprocess

    environment = {**os.environ, "EMBEDHUB_HOME": str(tmp_path / "home"), "EMBEDHUB_RAY_NUM_CPUS": "1",
                   "EMBEDHUB_BACKEND": "torch", "EMBEDHUB_THREADS": "1",
                   "PYTHONPATH": os.pathsep.join([str(Path(distributed.__file__).parents[2]),
                                                  os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    environment.pop("RAY_ADDRESS", None)

    def embedhub(*arguments: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-c", "from embedhub.cli import app; app()", *arguments]
        return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)

    corpus = write_corpus(tmp_path / "notes", files=3)
    assert embedhub("kb", "create", "human", "--model", str(tiny_model_dir)).returncode == 0
    added = embedhub("kb", "add", "human", str(corpus), "--ray", "auto")
    assert added.returncode == 1, added.stderr  # broken.pdf failed
    assert "on Ray (auto): 1 actor(s) started" in added.stdout
    assert "added 3" in added.stdout and "failed 1" in added.stdout and "broken.pdf" in added.stdout
    environment["EMBEDHUB_RAY_ADDRESS"] = "auto"  # the setting behind the flag
    (corpus / "broken.pdf").unlink()  # a failed file is tried again on every run
    again = embedhub("kb", "add", "human", str(corpus), "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["skipped"] == 3 and summary["ray"] == {"address": "auto", "actors": 0, "replaced": 0}


def test_ray_without_ray_installed_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDHUB_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = CliRunner().invoke(app, ["kb", "add", "anything", str(tmp_path), "--ray", "auto"])
    assert result.exit_code == 2
    assert "pip install 'embedhub[ray]'" in result.output


def test_server_folder_on_ray_is_one_job_with_a_summary(
    cluster, tiny_encoder, tiny_model_dir, ray_settings, tmp_path
):
    """POST /v1/collections/NAME/folders with `ray`: the whole folder is one job run on Ray."""
    import httpx

    from embedhub.kb.collection import KnowledgeBase
    from embedhub.server.app import create_app
    from tests.live_server import live_server
    from tests.server.test_kb_api import wait_for_jobs

    knowledge_base = KnowledgeBase(ray_settings)
    create(knowledge_base, "served", tiny_encoder, tiny_model_dir)
    knowledge_base.close()
    corpus = write_corpus(tmp_path / "corpus", files=5)
    app = create_app(ray_settings, encoders={"tiny": tiny_encoder})
    with live_server(app, "/ready") as url, httpx.Client(base_url=url, timeout=60) as client:
        answer = client.post(
            "/v1/collections/served/folders", json={"path": str(corpus), "ray": cluster.address}
        )
        assert answer.status_code == 202, answer.text
        (job,) = answer.json()["jobs"]
        assert (job["kind"], job["ray"]) == ("folder", cluster.address)
        (done,) = wait_for_jobs(client, "served", 1)
        assert done["status"] == "done", done["error"]
        assert done["outcome"] == "added 5, updated 0, skipped 0, failed 1" and done["progress"] == 1.0
        assert done["summary"]["ray"]["actors"] >= 1 and done["summary"]["failures"][0]["path"].endswith(
            ".pdf"
        )
        found = client.post("/v1/collections/served/search", json={"query": "detail of note 3", "k": 3})
        assert found.status_code == 200 and found.json()["results"]
