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

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from embedhub.errors import InvalidInputError
from embedhub.kb.chat import ChatEndpointError, ChatSettings, resolve_model, stream_chat
from embedhub.kb.collection import Collection
from embedhub.kb.lexical import DEFAULT_ANALYZER, Analyzer
from embedhub.kb.search import Mode, PassageScorer, Searcher, SearchOptions, SearchResult
from embedhub.kb.snippets import highlight, normalize_whitespace, sentences
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
#: visible characters of one highlighted evidence sentence (a longer one is cut around its terms)
EVIDENCE_SENTENCE_WIDTH = 400

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
            self.number,
            result.path,
            result.page_start,
            result.page_end,
            list(result.heading_path),
            result.chunk_id,
            result.doc_id,
            result.snippet,
        )

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
            retrieval_query(self.question, self.history),
            k=self.k,
            mode=self.mode,
            where=self.where,
            per_document=self.per_document,
            rerank=self.rerank,
        )


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
    reranker: PassageScorer | None = None,
    chat: ChatSettings | None = None,
) -> Answer:
    """Answer `question` from `collection` (see the module docstring). `encoder` is the collection's
    model (None for mode "lexical"); `reranker` reorders the fused candidates before the top `k`
    are kept; `per_document` limits the chunks of one document. Raises ChatEndpointError."""
    return collect(
        ask_stream(
            collection,
            encoder,
            question,
            history=history,
            k=k,
            mode=mode,
            per_document=per_document,
            where=where,
            reranker=reranker,
            chat=chat,
        )
    )


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
    reranker: PassageScorer | None = None,
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
    text = normalize_whitespace(text)
    scored = []
    for index, span in enumerate(sentences(text)):
        sentence = text[span.start : span.end]
        shared = len(wanted.intersection(analyzer.terms(sentence)))
        if shared:
            scored.append((shared, -index, sentence))
    best = sorted(sorted(scored, reverse=True)[:count], key=lambda item: -item[1])
    return [
        highlight(sentence, query, width=EVIDENCE_SENTENCE_WIDTH, analyzer=analyzer)
        for _, _, sentence in best
    ]


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
