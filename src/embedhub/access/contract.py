"""The one contract for reaching the knowledge base from a tool beside it (the CLI's `kb` commands,
the MCP tools): `KnowledgeBaseAccess`, answered either by a running `embedhub serve` (served.py,
with the caller's credentials, so the server applies that user's access) or in this process
(local.py). choice.py picks one for the MCP tools, commands/kb_reach.py for the CLI."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from embedhub.errors import EmbedhubError

if TYPE_CHECKING:
    from embedhub.kb.ask import AskOptions
    from embedhub.kb.ingest import Progress


class DocumentNotFoundError(EmbedhubError, LookupError):
    """No document by that id in the collection."""


class FailureNotFoundError(EmbedhubError, LookupError):
    """No kept failure for that path in the collection."""


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


@dataclass(frozen=True)
class CreateOptions:
    """`kb create`'s options. `model` None: this process's default model in process, the server's
    first served model through it; `backend` only matters in process (it reads no weights)."""

    model: str | None = None
    dimensions: int | None = None
    instruction: str | None = None
    chunk_tokens: int = 400
    chunk_overlap: int = 48
    lexical_language: str = "english"
    store: str = "lancedb"
    store_uri: str | None = None
    backend: str | None = None


@dataclass(frozen=True)
class AddOptions:
    """`kb add`'s options: files or folders, only those matching `glob`; `sync` removes the
    documents under `paths` whose files are gone; `ray` an address to ingest on (None: here, or in
    the server); `ann_min_rows` and `backend` apply in process (a server keeps its own)."""

    paths: tuple[Path, ...]
    glob: str | None = None
    sync: bool = False
    ray: str | None = None
    ray_actors: int | None = None
    ann_min_rows: int | None = None
    backend: str | None = None


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
    # the `kb` commands that change or describe collections
    def info(self, name: str) -> dict: ...
    def create(self, name: str, options: CreateOptions) -> dict: ...
    def add_paths(self, name: str, options: AddOptions, progress: Progress | None = None) -> dict: ...
    def remove_paths(self, name: str, paths: list[Path]) -> list[str]: ...
    def drop(self, name: str) -> None: ...
    # the files that failed or were skipped, kept per collection until dismissed
    def failures(self, name: str) -> list[dict]: ...
    def dismiss_failures(self, name: str, paths: list[str] | None) -> int: ...
    def access(self, name: str) -> dict: ...
    def share(self, name: str, kind: str, member: str, role: str) -> dict: ...
    def unshare(self, name: str, kind: str, member: str) -> dict: ...
