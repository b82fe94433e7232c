"""The one contract for reaching the knowledge base from a tool beside it (the CLI's `kb search` and
`kb ask`, the MCP tools): `KnowledgeBaseAccess`, answered either by a running `embedhub serve`
(served.py, with the caller's credentials) or in this process (local.py). choice.py picks one."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from embedhub.errors import EmbedhubError

if TYPE_CHECKING:
    from embedhub.kb.ask import AskOptions


class DocumentNotFoundError(EmbedhubError, LookupError):
    """No document by that id in the collection."""


@dataclass(frozen=True)
class Caller:
    """Who calls, when it is not this machine's user: their identity, the key they sent (passed on
    to a running server, which then applies their access) and the account store (in-process)."""

    principal: Any
    token: str | None
    store: Any


#: who the current call is for, set by an entry point for the duration of one call (the MCP
#: server, per request over HTTP with accounts on); None: this machine's user
CALLER: ContextVar[Caller | None] = ContextVar("embedhub_caller", default=None)


@dataclass
class SearchContext:
    """A searcher over one collection (its `search` takes `Searcher.search`'s arguments and returns
    its results; its `analyzer` is the collection's), and (in-process only) that collection and its
    encoder, for an answerer that wants them."""

    searcher: Any
    collection: Any = None
    encoder: Any = None


class KnowledgeBaseAccess(Protocol):
    """What the tools beside the knowledge base need; `via` says which way a call went."""

    via: str

    def collection_names(self) -> list[str]: ...
    def collections(self) -> list[dict]: ...
    def searcher(self, name: str, *, rerank: bool, needs_model: bool) -> Any: ...
    def documents(self, name: str) -> list[dict]: ...
    def document(self, name: str, doc_id: str) -> dict: ...
    def add(self, name: str, path: Path, glob: str | None) -> dict: ...
    def delete(self, name: str, doc_ids: list[str]) -> None: ...
    def ask(self, name: str, options: AskOptions, *, rerank: bool) -> dict: ...
