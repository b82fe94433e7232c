"""Answers from a collection, with citations: retrieve the evidence (hybrid search, an optional
reranker), number it [1]..[n] in a prompt, stream the answer from any OpenAI-compatible chat
endpoint, and map the [n] markers the answer uses back to the chunks that were sent as [n].

The library API (the CLI, the HTTP API and the MCP server all call it; no web framework here):

    chat = ChatSettings.from_settings(settings)          # EMBEDHUB_CHAT_URL / _MODEL / _API_KEY
    answer = ask(collection, encoder, "How is the cache keyed?", chat=chat)
    answer.answer          # the text, with [n] markers
    answer.citations       # the markers used, each mapped to the chunk sent as [n]
    answer.evidence        # every numbered chunk that was sent

    for event in ask_stream(collection, encoder, question, history=turns, chat=chat):
        event.name, event.data()   # "evidence", then "token"s, then "done" or "error"

`ask` raises `ChatEndpointError` (or its subclasses `ChatUnreachableError`, `ChatTimeoutError`) when
the chat endpoint is down, silent past its timeouts, answers an HTTP error or sends a malformed
stream; `ask_stream` reports the same as a final `ErrorEvent` instead, after the evidence and any
partial answer. Invalid input (an empty question, an unknown mode, a bad history) raises
`InvalidInputError` before anything is sent. With no chat endpoint configured (`chat` None or
without a URL) the answer is the ranked evidence, each item with its best sentences highlighted,
and a message saying how to configure one (status "no_chat").

`history` is the conversation so far as OpenAI chat messages, oldest first, without the new
question: `[{"role": "user", "content": ...}, {"role": "assistant", "content": ...}, ...]`. The
chat receives it (the earlier answers without their [n] markers, which pointed at evidence it no
longer sees); retrieval for a follow-up searches the new question together with the previous
questions, up to `FOLLOW_UP_CONTEXT` characters of them, so "and on disk?" finds what the earlier
question was about.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import httpx

from embedhub.config import Settings
from embedhub.errors import EmbedhubError, InvalidInputError
from embedhub.kb.collection import Collection
from embedhub.kb.lexical import DEFAULT_ANALYZER, Analyzer
from embedhub.kb.search import Mode, Reranker, Searcher, SearchOptions, SearchResult, highlight
from embedhub.kb.store import SearchFilter
from embedhub.models.base import Encoder

#: passages sent with a question: six chunks of up to 400 tokens fit a 4k-token chat context
DEFAULT_K = 6
MAX_K = 100
MAX_QUESTION_CHARS = 4000
MAX_HISTORY_MESSAGES = 50
#: characters of the previous questions a follow-up's retrieval query carries
FOLLOW_UP_CONTEXT = 300
#: sentences highlighted per evidence item
BEST_SENTENCES = 2

SYSTEM_PROMPT = (
    "You answer questions from a knowledge base. Use only the numbered evidence passages given with "
    "the question. Cite the passage behind each statement with its number in square brackets, such as "
    "[1] or [2][3]. If the evidence does not answer the question, say so plainly instead of guessing. "
    "Answer in the language of the question."
)
NO_CHAT_MESSAGE = (
    "No chat endpoint is configured, so here is the evidence, best first, without a written answer. "
    "For answers with citations, set EMBEDHUB_CHAT_URL to an OpenAI-compatible chat API (such as "
    "http://127.0.0.1:11434/v1 for Ollama or http://127.0.0.1:8080/v1 for llama.cpp's server), "
    "EMBEDHUB_CHAT_MODEL to its model and, if it needs one, EMBEDHUB_CHAT_API_KEY, where embedhub runs "
    "(for the web UI and the HTTP API: before `embedhub serve`)."
)
NO_EVIDENCE_MESSAGE = "Nothing in the collection matches the question: add documents or rephrase it."

Status = Literal["answered", "no_chat", "no_evidence"]

# [1], [1, 2], [1-3], [2][3], and the full-width brackets some models write in Chinese: 【1】 ［1］
_MARKER = re.compile(r"[\[【［]\s*(\d{1,4}(?:\s*[,;，、\-–]\s*\d{1,4})*)\s*[\]】］]")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|(?<=[。！？；])|\n\s*")


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


@dataclass
class Citation:
    """An [n] marker the answer used, and the chunk that was sent as [n]."""

    number: int
    path: str
    page_start: int | None
    page_end: int | None
    heading_path: list[str]
    chunk_id: str
    doc_id: str
    snippet: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Evidence:
    """A retrieved chunk as numbered in the prompt, with its best sentences (HTML, terms marked)."""

    number: int
    result: SearchResult
    highlights: list[str]

    def where(self) -> str:
        """File, page and heading, as the prompt and the command line show them."""
        result = self.result
        parts = [Path(result.path).name]
        if result.page_start is not None:
            same = result.page_start == result.page_end
            parts.append(
                f"page {result.page_start}" if same else f"pages {result.page_start}-{result.page_end}"
            )
        if result.heading_path:
            parts.append(" > ".join(result.heading_path))
        return ", ".join(parts)

    def citation(self) -> Citation:
        result = self.result
        return Citation(
            self.number, result.path, result.page_start, result.page_end, list(result.heading_path),
            result.chunk_id, result.doc_id, result.snippet,
        )  # fmt: skip

    def to_dict(self) -> dict:
        return {"number": self.number, **self.result.to_dict(), "highlights": self.highlights}


@dataclass(frozen=True)
class AskOptions:
    """What one question asks for, checked once where it enters (an HTTP body, CLI flags, an MCP
    tool call, a library call) and passed down whole: the question (stripped), the conversation so
    far (normalised: user and assistant turns, the last MAX_HISTORY_MESSAGES), how many passages
    to send (1..MAX_K) and how to search for them (`rerank` None: when the searcher has a
    reranker)."""

    question: str
    history: tuple[dict[str, str], ...] = ()
    k: int = DEFAULT_K
    mode: Mode = "hybrid"
    per_document: int | None = None
    where: SearchFilter = field(default_factory=SearchFilter)
    rerank: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "question", check_question(self.question))
        check_k(self.k)
        object.__setattr__(self, "history", tuple(normalise_history(self.history)))
        self.search_options()  # the mode and per_document, checked as a search checks them

    def search_options(self) -> SearchOptions:
        """The retrieval search: the question after the earlier questions (`retrieval_query`)."""
        return SearchOptions(
            retrieval_query(self.question, self.history), k=self.k, mode=self.mode, where=self.where,
            per_document=self.per_document, rerank=self.rerank,
        )  # fmt: skip


@dataclass
class Retrieval:
    """The query that was searched (the question, with earlier questions for a follow-up) and the
    numbered evidence it found."""

    query: str
    evidence: list[Evidence]


@dataclass
class Answer:
    question: str
    answer: str
    citations: list[Citation]
    evidence: list[Evidence]
    status: Status
    #: what the reader should know besides the answer: how to configure a chat endpoint, or why
    #: there is no answer
    message: str | None = None
    model: str | None = None
    retrieval_query: str = ""

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "answer": self.answer,
            "citations": [citation.to_dict() for citation in self.citations],
            "evidence": [item.to_dict() for item in self.evidence],
            "status": self.status,
            "message": self.message,
            "model": self.model,
            "retrieval_query": self.retrieval_query,
        }


# ---- events of a streamed answer: evidence, token..., then done or error -------------------------


@dataclass(frozen=True)
class EvidenceEvent:
    evidence: list[Evidence]
    retrieval_query: str
    name: ClassVar[str] = "evidence"

    def data(self) -> dict:
        return {"retrieval_query": self.retrieval_query, "evidence": [e.to_dict() for e in self.evidence]}


@dataclass(frozen=True)
class TokenEvent:
    text: str
    name: ClassVar[str] = "token"

    def data(self) -> dict:
        return {"text": self.text}


@dataclass(frozen=True)
class DoneEvent:
    answer: Answer
    name: ClassVar[str] = "done"

    def data(self) -> dict:
        body = self.answer.to_dict()
        del body["evidence"]  # already sent in the evidence event
        return body


@dataclass(frozen=True)
class ErrorEvent:
    error: ChatEndpointError
    name: ClassVar[str] = "error"

    def data(self) -> dict:
        return {"message": str(self.error), "code": self.error.code}


AskEvent = EvidenceEvent | TokenEvent | DoneEvent | ErrorEvent


# ---- the pipeline ---------------------------------------------------------------------------------


def ask(
    collection: Collection,
    encoder: Encoder | None,
    question: str,
    *,
    history: Sequence[Mapping[str, str]] = (),
    k: int = DEFAULT_K,
    mode: Mode = "hybrid",
    per_document: int | None = None,
    where: SearchFilter | None = None,
    reranker: Reranker | None = None,
    chat: ChatSettings | None = None,
) -> Answer:
    """Answer `question` from `collection` (see the module docstring). `encoder` is the collection's
    model (None for mode "lexical"); `reranker` reorders the fused candidates before the top `k`
    are kept; `per_document` limits the chunks of one document. Raises ChatEndpointError."""
    return collect(
        ask_stream(collection, encoder, question, history=history, k=k, mode=mode,
                   per_document=per_document, where=where, reranker=reranker, chat=chat)
    )  # fmt: skip


def ask_stream(
    collection: Collection,
    encoder: Encoder | None,
    question: str,
    *,
    history: Sequence[Mapping[str, str]] = (),
    k: int = DEFAULT_K,
    mode: Mode = "hybrid",
    per_document: int | None = None,
    where: SearchFilter | None = None,
    reranker: Reranker | None = None,
    chat: ChatSettings | None = None,
) -> Iterator[AskEvent]:
    """`ask` as events: one EvidenceEvent, TokenEvents as the answer arrives, then a DoneEvent (the
    Answer) or an ErrorEvent (a chat endpoint failure). Close it to stop early."""
    options = AskOptions(
        question, tuple(history), k=k, mode=mode, per_document=per_document, where=where or SearchFilter()
    )
    retrieval = gather_evidence(Searcher(collection, encoder, reranker), options)
    yield from answer_events(options, retrieval, chat=chat)


def gather_evidence(searcher: Searcher, options: AskOptions) -> Retrieval:
    """The retrieval step alone (the HTTP API runs it before it starts streaming, so a bad request
    or a full model queue is an HTTP status, not an event). `searcher` is a Searcher or anything
    with its `find` and `analyzer` (the served searcher of embedhub.access)."""
    search = options.search_options()
    results = searcher.find(search)
    return Retrieval(search.query, number_evidence(results, search.query, searcher.analyzer))


def answer_events(
    options: AskOptions, retrieval: Retrieval, *, chat: ChatSettings | None = None
) -> Iterator[AskEvent]:
    """The events of an answer to `options.question` from evidence already retrieved."""
    question, turns = options.question, list(options.history)
    evidence = retrieval.evidence
    yield EvidenceEvent(evidence, retrieval.query)

    def finished(text: str, status: Status, message: str | None = None, model: str | None = None):
        citations = [evidence[number - 1].citation() for number in cited_numbers(text, len(evidence))]
        return DoneEvent(Answer(question, text, citations, evidence, status, message, model, retrieval.query))

    if not evidence:
        yield finished("", "no_evidence", NO_EVIDENCE_MESSAGE)
        return
    if chat is None or not chat.configured:
        yield finished("", "no_chat", NO_CHAT_MESSAGE)
        return
    pieces: list[str] = []
    try:
        model = resolve_model(chat)
        with closing(stream_chat(chat, model, build_messages(question, evidence, turns))) as deltas:
            for delta in without_thinking(deltas):
                pieces.append(delta)
                yield TokenEvent(delta)
    except ChatEndpointError as error:
        yield ErrorEvent(error)
        return
    text = "".join(pieces)
    empty = None if text.strip() else f"the chat model {model} returned an empty answer"
    yield finished(text, "answered", empty, model)


def collect(events: Iterable[AskEvent]) -> Answer:
    """The Answer at the end of a stream of events; an ErrorEvent raises its ChatEndpointError."""
    with closing(iter(events)) as stream:
        for event in stream:
            if isinstance(event, ErrorEvent):
                raise event.error
            if isinstance(event, DoneEvent):
                return event.answer
    raise ChatEndpointError("the answer stream ended without an answer")


# ---- the pieces -----------------------------------------------------------------------------------


def check_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise InvalidInputError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidInputError(
            f"the question has {len(question)} characters, more than {MAX_QUESTION_CHARS}; shorten it"
        )
    return question.strip()


def check_k(k: int) -> int:
    if not 1 <= k <= MAX_K:
        raise InvalidInputError(f"k={k} is outside 1..{MAX_K}; each passage goes into the prompt")
    return k


def normalise_history(history: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """The conversation as {"role", "content"} messages (user and assistant only), the last
    MAX_HISTORY_MESSAGES of it."""
    turns = []
    for index, message in enumerate(history or ()):
        role = message.get("role") if isinstance(message, Mapping) else None
        content = message.get("content") if isinstance(message, Mapping) else None
        if role not in ("user", "assistant") or not isinstance(content, str):
            raise InvalidInputError(
                f"history item {index} is not a chat message: each item needs a role (user or assistant) "
                "and a content string"
            )
        turns.append({"role": role, "content": content})
    return turns[-MAX_HISTORY_MESSAGES:]


def retrieval_query(question: str, history: Sequence[Mapping[str, str]]) -> str:
    """The question, after the previous questions of the conversation (most recent last) up to
    FOLLOW_UP_CONTEXT characters: a follow-up such as "and its size?" names its subject there."""
    earlier: list[str] = []
    room = FOLLOW_UP_CONTEXT
    for message in reversed(history):
        if message["role"] != "user" or not message["content"].strip():
            continue
        text = " ".join(message["content"].split())
        if len(text) > room:
            if not earlier:
                earlier.append(text[-room:])
            break
        earlier.append(text)
        room -= len(text) + 1
    return "\n".join([*reversed(earlier), question])


def best_sentences(
    text: str, query: str, analyzer: Analyzer = DEFAULT_ANALYZER, count: int = BEST_SENTENCES
) -> list[str]:
    """The `count` sentences sharing the most query terms, in text order, HTML-escaped with the
    terms in <mark> (what the reader sees when no chat endpoint writes an answer)."""
    wanted = set(analyzer.terms(query))
    if not wanted:
        return []
    scored = []
    for index, sentence in enumerate(part.strip() for part in _SENTENCE_BREAK.split(text)):
        shared = len(wanted.intersection(analyzer.terms(sentence))) if sentence else 0
        if shared:
            scored.append((shared, -index, sentence))
    best = sorted(sorted(scored, reverse=True)[:count], key=lambda item: -item[1])
    return [highlight(sentence, query, width=min(len(sentence), 400), analyzer=analyzer)
            for _, _, sentence in best]  # fmt: skip


def number_evidence(
    results: Sequence[SearchResult], query: str, analyzer: Analyzer = DEFAULT_ANALYZER
) -> list[Evidence]:
    return [
        Evidence(number, result, best_sentences(result.text, query, analyzer))
        for number, result in enumerate(results, start=1)
    ]


def build_messages(
    question: str, evidence: Sequence[Evidence], history: Sequence[Mapping[str, str]] = ()
) -> list[dict[str, str]]:
    """System instructions, the conversation so far, then the numbered evidence and the question."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for turn in history:
        content = turn["content"] if turn["role"] == "user" else strip_markers(turn["content"])
        messages.append({"role": turn["role"], "content": content})
    passages = "\n\n".join(f"[{item.number}] {item.where()}\n{item.result.text.strip()}" for item in evidence)
    messages.append({"role": "user", "content": f"Evidence:\n\n{passages}\n\nQuestion: {question}"})
    return messages


def without_thinking(deltas: Iterable[str]) -> Iterator[str]:
    """The deltas without a leading <think>...</think> block: reasoning models (Qwen3, DeepSeek-R1)
    write one when the server does not split it off into its own field, and its [n] markers or
    drafts are not the answer."""
    opening, closing_tag = "<think>", "</think>"
    buffer, state = "", "start"
    for delta in deltas:
        if state == "answer":
            yield delta
            continue
        buffer += delta
        if state == "start":
            head = buffer.lstrip()
            if len(head) < len(opening) and opening.startswith(head):
                continue  # may still become <think>
            if not head.startswith(opening):
                state = "answer"
                yield buffer
                continue
            state = "thinking"
        end = buffer.find(closing_tag)
        if end >= 0:
            state = "answer"
            rest = buffer[end + len(closing_tag) :].lstrip()
            if rest:
                yield rest
    if state == "start" and buffer.strip():
        yield buffer


def cited_numbers(text: str, count: int) -> list[int]:
    """The evidence numbers 1..count the text cites, in order of first use."""
    cited: list[int] = []
    for match in _MARKER.finditer(text):
        for part in re.split(r"\s*[,;，、]\s*", match.group(1)):
            bounds = [int(value) for value in re.split(r"\s*[\-–]\s*", part)]
            if len(bounds) == 2 and 0 <= bounds[1] - bounds[0] < 50:
                bounds = list(range(bounds[0], bounds[1] + 1))
            cited.extend(n for n in dict.fromkeys(bounds) if 1 <= n <= count and n not in cited)
    return cited


def strip_markers(text: str) -> str:
    return re.sub(r"[ \t]*" + _MARKER.pattern, "", text)


# ---- the chat endpoint ----------------------------------------------------------------------------


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
