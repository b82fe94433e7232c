"""A live `embedhub serve` stops within seconds while a file is being embedded and an event
stream is open, and the interrupted job resumes after a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx

from tests.kb.test_jobs import big_text
from tests.live_server import free_port


def start_server(home, model_dir, port, log):
    environment = {**os.environ, "EMBEDHUB_HOME": str(home), "EMBEDHUB_THREADS": "1"}
    command = [sys.executable, "-c", "from embedhub.cli import app; app()", "serve",
               "--model", str(model_dir), "--port", str(port), "--log-level", "warning"]  # fmt: skip
    process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the server did not become ready (exit code {process.poll()})")


def wait_for(client, job_id, predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if predicate(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job never reached the state wanted: {job}")


def stop(process, sig) -> float:
    started = time.monotonic()
    process.send_signal(sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("the server ignored the signal for 30 s") from None
    return time.monotonic() - started


def test_graceful_shutdown_during_ingest_then_resume(tiny_model_dir, tmp_path):
    home, port = tmp_path / "home", free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    text = big_text("armadillo", 3000).encode()  # ~1.3 MB: several batches of 256 chunks
    process = start_server(home, tiny_model_dir, port, log)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            created = {"name": "live", "model": str(tiny_model_dir), "chunk_tokens": 64}
            client.post("/v1/collections", json=created)
            files = [("files", ("big.txt", text, "text/plain"))]
            upload = client.post("/v1/collections/live/files", files=files)
            job_id = upload.json()["jobs"][0]["id"]
            running = wait_for(client, job_id, lambda job: job["status"] == "embedding" and job["chunks"] > 0)
            assert 0 < running["progress"] < 1
        events_ended = threading.Event()

        def listen():
            with httpx.stream("GET", f"{url}/v1/collections/live/events", timeout=60) as stream:
                for _ in stream.iter_lines():
                    pass
            events_ended.set()

        threading.Thread(target=listen, daemon=True).start()
        time.sleep(0.5)
        seconds = stop(process, signal.SIGTERM)
        print(f"SIGTERM to exit during an ingest with an open event stream: {seconds:.2f}s")
        assert seconds < 8, f"SIGTERM took {seconds:.1f}s to stop the server"
        assert events_ended.wait(5), "the event stream was left open"
    finally:
        if process.poll() is None:
            process.kill()

    process = start_server(home, tiny_model_dir, port, log)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            job = client.get(f"/v1/jobs/{job_id}").json()
            assert job["resumed"] == 1 and job["status"] in ("queued", "parsing", "embedding", "done"), job
            if job["status"] != "done":
                cancelled = client.post(f"/v1/jobs/{job_id}/cancel").json()
                assert cancelled["status"] == "cancelled"
                assert not (home / "collections" / "live" / "uploads" / "big.txt").exists()
            assert client.get("/v1/collections/live").json()["stored_chunks"] in (0, job["chunks"])
        assert stop(process, signal.SIGINT) < 8
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
