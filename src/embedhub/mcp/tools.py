"""The knowledge-base tools an agent calls. Each method's docstring is its description for the
agent; the server adds the names of the existing collections when it lists the tools.

(No `from __future__ import annotations` here: the SDK reads the parameter types and their
descriptions from the live annotations.)"""

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from embedhub.access.choice import Access
from embedhub.errors import InvalidInputError
from embedhub.kb.ask import MAX_QUESTION_CHARS, AskOptions
from embedhub.kb.files import under_paths
from embedhub.kb.search import MAX_QUERY_CHARS, SearchOptions
from embedhub.kb.store import SearchFilter

#: the tools that take a collection name: their descriptions list the collections
COLLECTION_TOOLS = ("list_collections", "search", "fetch_chunk", "add", "delete_document", "ask")
#: results and evidence per tool call: fewer than a search may return, each lands in the agent's context
MAX_K = 50
MAX_NEIGHBOURS = 10

CollectionName = Annotated[str, Field(description="The collection's name (see list_collections).")]
Mode = Annotated[
    Literal["hybrid", "dense", "lexical"],
    Field(
        description="hybrid (meaning and exact words fused: the best default), dense (meaning only) "
        "or lexical (BM25 over exact words: names, codes, rare terms)."
    ),
]
K = Annotated[int, Field(ge=1, le=MAX_K, description="How many chunks to return.")]
PathGlob = Annotated[
    str | None,
    Field(description="Only files whose path matches this glob, e.g. '*.pdf', 'handbook/*' or '*/2024/*'."),
]
FileTypes = Annotated[
    list[str] | None, Field(description="Only these file types: pdf, docx, markdown, html, text or code.")
]
PageMin = Annotated[int | None, Field(ge=1, description="Only chunks on or after this page (PDF).")]
PageMax = Annotated[int | None, Field(ge=1, description="Only chunks on or before this page (PDF).")]
PerDocument = Annotated[
    int | None, Field(ge=1, description="At most this many chunks of one document (default: any).")
]
Rerank = Annotated[
    bool,
    Field(
        description="Rerank the fused candidates with a cross-encoder before cutting to k, when a "
        "reranker is available; the result says whether it was."
    ),
]


def citation(path: str, page_start: int | None, page_end: int | None, heading_path: list[str]) -> dict:
    """Where a chunk comes from: file, page(s), heading path, and one line saying all three."""
    pages = None
    if page_start is not None:
        pages = f"p. {page_start}" if page_start == page_end else f"pp. {page_start}-{page_end}"
    label = " | ".join(part for part in (Path(path).name, pages, " > ".join(heading_path)) if part)
    return {
        "file": Path(path).name,
        "path": path,
        "page_start": page_start,
        "page_end": page_end,
        "heading_path": list(heading_path),
        "label": label,
    }


def absolute_path(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_absolute():
        raise InvalidInputError(
            f"{text!r} is a relative path; give the absolute path of the file or folder on this machine "
            f"(this server runs in {Path.cwd()})"
        )
    if not path.exists():
        raise InvalidInputError(f"{path} does not exist on this machine; check the path and try again")
    return path


class KnowledgeBaseTools:
    def __init__(self, access: Access) -> None:
        self.access = access

    def list_collections(self) -> dict[str, Any]:
        """List the knowledge-base collections: name, embedding model, documents and chunks stored.
        Call it first to see what can be searched."""
        knowledge_base = self.access.current()
        rows = [
            {
                "name": row["name"],
                "model": row["model"],
                "documents": row["done"],
                "chunks": row["stored_chunks"],
                "failed_documents": row["failed"],
                "description": row.get("description") or "",
            }
            for row in knowledge_base.collections()
        ]
        return {"collections": rows, "via": knowledge_base.via}

    def search(
        self,
        collection: CollectionName,
        query: Annotated[
            str, Field(min_length=1, max_length=MAX_QUERY_CHARS, description="What to look for.")
        ],
        mode: Mode = "hybrid",
        k: K = 5,
        path_glob: PathGlob = None,
        file_types: FileTypes = None,
        page_min: PageMin = None,
        page_max: PageMax = None,
        per_document: PerDocument = None,
        rerank: Rerank = False,
    ) -> dict[str, Any]:
        """Search a collection of documents. Returns the best chunks, best first, each with its text,
        its chunk_id (for fetch_chunk, to read around it) and its citation: file, page and heading
        path. Cite results by their citation label."""
        knowledge_base = self.access.current()
        where = SearchFilter(path_glob, tuple(file_types or ()), page_min, page_max)
        options = SearchOptions(query, k=k, mode=mode, where=where, per_document=per_document)
        with knowledge_base.searcher(collection, rerank=rerank, needs_model=mode != "lexical") as context:
            found = context.searcher.find(options)
        results = [
            {
                "rank": result.rank,
                "chunk_id": result.chunk_id,
                "doc_id": result.doc_id,
                "score": round(result.score, 6),
                "retrievers": result.retrievers,
                "text": result.text,
                "citation": citation(result.path, result.page_start, result.page_end, result.heading_path),
            }
            for result in found
        ]
        reranked = any(name.startswith("rerank:") for result in found for name in result.retrievers)
        answer: dict[str, Any] = {"results": results, "reranked": reranked, "via": knowledge_base.via}
        if rerank and found and not reranked:
            answer["note"] = (
                "not reranked: no reranker is available "
                + (
                    "in the running embedhub serve"
                    if knowledge_base.via == "embedhub serve"
                    else "(start the MCP server with `embedhub mcp --reranker FOLDER`)"
                )
                + "; these are the fused results"
            )
        return answer

    def fetch_chunk(
        self,
        collection: CollectionName,
        chunk_id: Annotated[str, Field(description="A chunk_id from search results.")],
        before: Annotated[
            int, Field(ge=0, le=MAX_NEIGHBOURS, description="Chunks of the same document before it.")
        ] = 1,
        after: Annotated[
            int, Field(ge=0, le=MAX_NEIGHBOURS, description="Chunks of the same document after it.")
        ] = 1,
    ) -> dict[str, Any]:
        """Read a chunk with its neighbours: the chunks just before and after it in the same
        document, and its citation (file, page, heading path). Use it to see the context of a
        search result."""
        doc_id, separator, _ = chunk_id.partition(":")
        if not separator or not doc_id:
            raise InvalidInputError(
                f"{chunk_id!r} is not a chunk id; chunk ids look like DOCUMENT:GENERATION:INDEX, as "
                "search returns them"
            )
        knowledge_base = self.access.current()
        document = knowledge_base.document(collection, doc_id)
        chunks = document["chunks"]
        position = next((i for i, chunk in enumerate(chunks) if chunk["id"] == chunk_id), None)
        if position is None:
            raise InvalidInputError(
                f"chunk {chunk_id} is no longer stored: its document was re-ingested since; search "
                "again for the current chunk ids"
            )

        def view(chunk: dict) -> dict:
            return {
                "chunk_id": chunk["id"],
                "index": chunk["index"],
                "text": chunk["text"],
                "citation": citation(
                    document["path"], chunk["page_start"], chunk["page_end"], chunk["heading_path"]
                ),
            }

        chunk = view(chunks[position])
        return {
            "chunk": chunk,
            "before": [view(c) for c in chunks[max(0, position - before) : position]],
            "after": [view(c) for c in chunks[position + 1 : position + 1 + after]],
            "citation": chunk["citation"],
            "document": {"doc_id": doc_id, "path": document["path"], "chunks": len(chunks)},
        }

    def add(
        self,
        collection: CollectionName,
        path: Annotated[str, Field(description="Absolute path of a file or folder on this machine.")],
        glob: Annotated[
            str | None, Field(description="Only files matching this glob, e.g. '*.md' (folders).")
        ] = None,
    ) -> dict[str, Any]:
        """Add a file, or every supported file under a folder (PDF, DOCX, Markdown, HTML, text,
        code), to a collection. Unchanged files are skipped and changed ones replaced. Returns how
        many were added, updated, skipped and failed, with each failure's reason."""
        target = absolute_path(path)
        knowledge_base = self.access.current()
        return {**knowledge_base.add(collection, target, glob), "via": knowledge_base.via}

    def delete_document(
        self,
        collection: CollectionName,
        document: Annotated[
            str,
            Field(
                description="A doc_id from search results, or the absolute path of a file (or of a folder: "
                "every document under it)."
            ),
        ],
    ) -> dict[str, Any]:
        """Delete a document (all its chunks) from a collection, by doc_id or by file path."""
        knowledge_base = self.access.current()
        records = knowledge_base.documents(collection)
        chosen = [record for record in records if record["doc_id"] == document]
        if not chosen and document.strip():
            chosen = under_paths(records, [Path(document)], lambda record: record["path"])
        if not chosen:
            raise InvalidInputError(
                f"no document in collection {collection!r} has the id or path {document!r}; use a doc_id "
                "from search results or the absolute path the document was added from"
            )
        knowledge_base.delete(collection, [record["doc_id"] for record in chosen])
        return {
            "deleted": [{"doc_id": record["doc_id"], "path": record["path"]} for record in chosen],
            "via": knowledge_base.via,
        }

    def ask(
        self,
        collection: CollectionName,
        question: Annotated[
            str, Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="The question.")
        ],
        k: Annotated[int, Field(ge=1, le=MAX_K, description="Chunks of evidence to use.")] = 6,
        rerank: Rerank = False,
    ) -> dict[str, Any]:
        """Answer a question from a collection's documents: the answer cites numbered evidence
        [n], and `citations` maps each [n] it used to its file, page and heading. With no chat
        endpoint configured (EMBEDHUB_CHAT_URL), `status` is "no_chat" and the answer is the ranked
        evidence with its best sentences highlighted."""
        options = AskOptions(question, k=k)
        knowledge_base = self.access.current()
        answer = knowledge_base.ask(collection, options, rerank=rerank)
        return {**answer, "via": knowledge_base.via}
