"""The client of an OpenAI-compatible chat endpoint that writes the answers (Ollama, llama.cpp's
server, vLLM, SGLang, a hosted API): which endpoint (ChatSettings, from EMBEDHUB_CHAT_*), the model
it serves, and the answer's text streamed from POST /chat/completions (Server-Sent Events), every
failure a ChatEndpointError that says what to check."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

from embedhub.config import Settings
from embedhub.errors import EmbedhubError


class ChatEndpointError(EmbedhubError):
    """The chat endpoint answered an error or something that is not a chat completion stream."""

    code = "chat_error"


class ChatUnreachableError(ChatEndpointError):
    """No connection to the chat endpoint (refused, unknown host)."""

    code = "chat_unreachable"


class ChatTimeoutError(ChatEndpointError):
    """The chat endpoint did not connect, or stayed silent, within the configured timeouts."""

    code = "chat_timeout"


@dataclass(frozen=True)
class ChatSettings:
    """Where answers come from: an OpenAI-compatible API's base URL (…/v1), its model, its key."""

    url: str | None = None
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    connect_timeout: float = 5.0
    #: the longest silence allowed: before the first token and between two pieces of the answer
    read_timeout: float = 120.0
    #: the longest one answer may take in all
    total_timeout: float = 600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ChatSettings:
        return cls(
            url=settings.chat_url,
            model=settings.chat_model,
            api_key=settings.chat_api_key,
            connect_timeout=settings.chat_connect_timeout,
            read_timeout=settings.chat_read_timeout,
            total_timeout=settings.chat_timeout,
        )

    @property
    def configured(self) -> bool:
        return bool(self.url)


def _client(chat: ChatSettings) -> httpx.Client:
    headers = {"Authorization": f"Bearer {chat.api_key}"} if chat.api_key else {}
    timeout = httpx.Timeout(chat.read_timeout, connect=chat.connect_timeout)
    return httpx.Client(timeout=timeout, headers=headers, follow_redirects=True)


def resolve_model(chat: ChatSettings) -> str:
    """The configured model, or the first one the endpoint lists at GET /models."""
    if chat.model:
        return chat.model
    address = f"{chat.url}/models"
    try:
        with _client(chat) as client:
            response = client.get(address)
            if response.status_code >= 400:
                raise ChatEndpointError(_http_error(address, response) + "; or set EMBEDHUB_CHAT_MODEL")
            listed = response.json().get("data") or []
            return str(listed[0]["id"])
    except httpx.HTTPError as error:
        raise _transport_error(error, address, chat) from None
    except (ValueError, AttributeError, LookupError, TypeError):
        raise ChatEndpointError(
            f"EMBEDHUB_CHAT_MODEL is not set and {address} lists no model; set EMBEDHUB_CHAT_MODEL"
        ) from None


def stream_chat(chat: ChatSettings, model: str, messages: list[dict[str, str]]) -> Iterator[str]:
    """The answer's text deltas from POST {url}/chat/completions with `stream: true`. Raises
    ChatEndpointError (unreachable, timeouts, HTTP errors with the endpoint's message, a stream that
    is not OpenAI's chat.completion.chunk format or ends before [DONE])."""
    address = f"{chat.url}/chat/completions"
    deadline = time.monotonic() + chat.total_timeout
    request = {"model": model, "messages": messages, "stream": True}
    try:
        with _client(chat) as client, client.stream("POST", address, json=request) as response:
            if response.status_code >= 400:
                response.read()
                raise ChatEndpointError(_http_error(address, response))
            if response.headers.get("content-type", "").startswith("application/json"):
                # a server that ignores `stream` answers with one chat.completion
                response.read()
                yield _whole_answer(response, address)
                return
            yield from _stream_deltas(response, address, deadline, chat)
    except httpx.HTTPError as error:
        raise _transport_error(error, address, chat) from None


def _stream_deltas(response: httpx.Response, address: str, deadline: float, chat: ChatSettings):
    finished = False
    for raw in response.iter_lines():
        if time.monotonic() > deadline:
            raise ChatTimeoutError(
                f"the answer from {address} took longer than {chat.total_timeout:g} s; raise "
                "EMBEDHUB_CHAT_TIMEOUT or ask for fewer passages (k)"
            )
        line = raw.strip()
        if not line.startswith("data:"):
            continue  # blank lines end events; comments, `event:` and `id:` lines carry no text
        payload = line[len("data:") :].strip()
        if payload == "[DONE]":
            return
        try:
            chunk = json.loads(payload)
        except json.JSONDecodeError:
            raise ChatEndpointError(
                f"{address} sent a malformed stream: {payload[:120]!r} is not a JSON chunk"
            ) from None
        if isinstance(chunk, dict) and chunk.get("error"):
            raise ChatEndpointError(f"{address} reported an error mid-answer: {_message_of(chunk)}")
        text, finish = _delta(chunk, payload, address)
        finished = finished or finish
        if text:
            yield text
    if not finished:
        raise ChatEndpointError(f"{address} ended the stream before the answer was complete (no [DONE])")


def _delta(chunk: object, payload: str, address: str) -> tuple[str, bool]:
    """The text and whether the choice finished, from one chat.completion.chunk."""
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    if not isinstance(choices, list):
        raise ChatEndpointError(
            f"{address} sent a malformed stream: {payload[:120]!r} is not a chat.completion.chunk"
        )
    if not choices:
        return "", False  # a usage-only chunk
    choice = choices[0] if isinstance(choices[0], dict) else {}
    content = (choice.get("delta") or {}).get("content")
    if content is not None and not isinstance(content, str):
        raise ChatEndpointError(f"{address} sent a malformed stream: delta content is not text")
    return content or "", bool(choice.get("finish_reason"))


def _whole_answer(response: httpx.Response, address: str) -> str:
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, LookupError, TypeError):
        raise ChatEndpointError(f"{address} answered JSON that is not a chat completion") from None
    return content if isinstance(content, str) else ""


def _message_of(body: object) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("error", "message", "detail"):
            if isinstance(body.get(key), str):
                return body[key]
    return json.dumps(body)[:300]


def _http_error(address: str, response: httpx.Response) -> str:
    try:
        message = _message_of(response.json())
    except ValueError:
        message = response.text.strip()[:300] or response.reason_phrase
    hints = {
        401: "check EMBEDHUB_CHAT_API_KEY",
        403: "check EMBEDHUB_CHAT_API_KEY",
        404: "check EMBEDHUB_CHAT_URL (the API's base, usually ending in /v1) and EMBEDHUB_CHAT_MODEL",
    }
    hint = f"; {hints[response.status_code]}" if response.status_code in hints else ""
    return f"the chat endpoint {address} answered {response.status_code}: {message}{hint}"


def _transport_error(error: httpx.HTTPError, address: str, chat: ChatSettings) -> ChatEndpointError:
    if isinstance(error, httpx.ConnectTimeout):
        return ChatTimeoutError(
            f"the chat endpoint {address} did not accept a connection within {chat.connect_timeout:g} s "
            "(EMBEDHUB_CHAT_CONNECT_TIMEOUT); is EMBEDHUB_CHAT_URL right?"
        )
    if isinstance(error, httpx.TimeoutException):
        return ChatTimeoutError(
            f"the chat endpoint {address} sent nothing for {chat.read_timeout:g} s "
            "(EMBEDHUB_CHAT_READ_TIMEOUT); it may be overloaded or stuck"
        )
    if isinstance(error, httpx.ConnectError):
        return ChatUnreachableError(
            f"cannot reach the chat endpoint {address} ({error}); is the chat server running, and is "
            "EMBEDHUB_CHAT_URL right?"
        )
    reason = str(error) or type(error).__name__
    return ChatEndpointError(f"the chat endpoint {address} failed mid-answer: {reason}")
