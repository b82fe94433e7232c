"""A stand-in OpenAI-compatible chat server on 127.0.0.1 (a free port) for the `ask` tests.

It speaks the real protocol: `POST /v1/chat/completions` with `stream: true` answers
`text/event-stream` chat.completion.chunk lines ending in `data: [DONE]` (and one chat.completion
JSON with `stream: false`), `GET /v1/models` lists one model. It records every request body, and
`mode` makes it fail the ways real endpoints do: "error" (500 with an OpenAI error body), "hang"
(accepts, then says nothing until released), "malformed" (a chunk that is not JSON mid-stream),
"truncated" (the connection closes before [DONE]). A refused connection needs no server:
`refused_url()` is a free port nobody listens on.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.live_server import free_port

MODEL = "standin-chat"
ERROR_MESSAGE = "the model ran out of memory"


class ChatStandIn:
    def __init__(self, answer: str | Callable[[dict], str]) -> None:
        self.answer = answer
        self.mode = "ok"
        self.chunk_delay = 0.0
        self.requests: list[dict] = []
        self.release = threading.Event()
        self.url = ""

    def answer_for(self, request: dict) -> str:
        return self.answer(request) if callable(self.answer) else self.answer

    @property
    def last_prompt(self) -> str:
        """The user message carrying the evidence and the question, of the last request."""
        return self.requests[-1]["messages"][-1]["content"]


def _handler(standin: ChatStandIn):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _json(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
            else:
                self._json(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length) or b"{}")
            if self.path != "/v1/chat/completions":
                self._json(404, {"error": {"message": f"no route {self.path}"}})
                return
            standin.requests.append(request)
            if standin.mode == "error":
                self._json(500, {"error": {"message": ERROR_MESSAGE, "type": "server_error"}})
                return
            if standin.mode == "hang":
                standin.release.wait(30)
                return
            answer = standin.answer_for(request)
            if not request.get("stream"):
                choice = {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer},
                    "finish_reason": "stop",
                }
                self._json(200, {"object": "chat.completion", "model": request["model"], "choices": [choice]})
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()  # HTTP/1.0: the body ends when the connection closes

            def send(delta: dict, finish: str | None = None) -> None:
                chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": request["model"],
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                if standin.chunk_delay:
                    time.sleep(standin.chunk_delay)

            send({"role": "assistant", "content": ""})
            words = answer.split(" ")
            for index, word in enumerate(words):
                send({"content": word if index == 0 else " " + word})
                if standin.mode == "malformed" and index == 1:
                    self.wfile.write(b"data: {this is not json\n\n")
                    return
                if standin.mode == "truncated" and index == 1:
                    return
            send({}, finish="stop")
            self.wfile.write(b"data: [DONE]\n\n")

    return Handler


@contextmanager
def chat_standin(answer: str | Callable[[dict], str] = "The answer [1]."):
    standin = ChatStandIn(answer)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(standin))
    server.daemon_threads = True
    standin.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        standin.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def refused_url() -> str:
    """A chat URL on a free port of 127.0.0.1: connecting is refused."""
    return f"http://127.0.0.1:{free_port()}/v1"
