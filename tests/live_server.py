"""Run an app on a real uvicorn server on 127.0.0.1 (a free port) in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import httpx
import uvicorn


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def live_server(app, ready_path: str = "/health", timeout: float = 60.0, port: int | None = None):
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + ready_path, timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    else:
        server.should_exit = True
        raise RuntimeError(f"server did not answer {ready_path} within {timeout}s")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
