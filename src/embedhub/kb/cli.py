"""`embedhub kb ...`: collections from the command line, with a progress bar and a summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from embedhub.cli_support import user_errors
from embedhub.config import Settings
from embedhub.errors import EmbedhubError
from embedhub.kb.ingest import Progress

app = typer.Typer(help="Knowledge bases: create, add files, search.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
BackendOption = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="torch | torch-bf16 | torch-int8 | onnx-int8 | auto. [env: EMBEDHUB_BACKEND]",
        show_default=False,
    ),
]


def _settings(backend: str | None = None) -> Settings:
    settings = Settings()
    return settings.model_copy(update={"backend": backend}) if backend else settings


def _knowledge_base():
    from embedhub.kb.collection import KnowledgeBase

    return KnowledgeBase(Settings())


def _encoder_for(collection, backend: str | None = None):
    from embedhub.models.loading import load_encoder

    settings = _settings(backend)
    encoder = load_encoder(collection.config.model_reference, settings)
    collection.check_encoder(encoder)
    return encoder


@app.command("create")
@user_errors
def create(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Embedding model (default: auto).")
    ] = None,
    dimensions: Annotated[int | None, typer.Option(help="MRL dimensions stored (Qwen3: 32..native).")] = None,
    instruction: Annotated[
        str | None,
        typer.Option(
            help="Query instruction (instruction-aware models): free text, or a task name "
            "(retrieval, code, sts, ...) for the model's published instruction."
        ),
    ] = None,
    chunk_tokens: Annotated[int, typer.Option(help="Chunk size in model tokens.")] = 400,
    chunk_overlap: Annotated[int, typer.Option(help="Overlap between chunks of a section, tokens.")] = 48,
    lexical_language: Annotated[
        str,
        typer.Option(
            help="Stemmer and stop words of the lexical index: english, french, german, ... or none "
            "(Chinese is always segmented into words)."
        ),
    ] = "english",
    backend: BackendOption = None,
) -> None:
    """Create a collection bound to one model, its dimensions and its query instruction."""
    from embedhub.kb.lexical import Analyzer
    from embedhub.models.loading import load_encoder, resolve

    Analyzer(lexical_language)  # a wrong language fails before the model loads
    settings = _settings(backend)
    reference = model or settings.model
    resolved = resolve(reference, settings)
    encoder = load_encoder(reference, settings)
    stable_reference = reference if reference != "auto" else resolved.spec.name
    collection = _knowledge_base().create(
        name, encoder, model_reference=stable_reference, dimensions=dimensions, instruction=instruction,
        chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap, lexical_language=lexical_language,
    )  # fmt: skip
    config = collection.config
    typer.echo(
        f"created {name}: model {config.model}, {config.dimensions} dims, "
        f"chunks of {config.chunk_tokens} tokens"
    )


class _RichProgress(Progress):
    """The ingest progress bar. It subclasses the ingest `Progress` callbacks, so a callback added
    there later has a do-nothing default here instead of crashing the human output."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        self.bar = Bar(
            TextColumn("[bold]ingesting"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "files  {task.fields[chunks]} chunks  {task.fields[tokens]} tokens  {task.fields[last]}"
            ),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task = None
        self.chunks = 0
        self.tokens = 0

    def start(self, files: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task("ingest", total=files, chunks=0, tokens=0, last="")

    def stage(self, path: Path, stage: str) -> None:
        if self.task is not None:
            self.bar.update(self.task, last=f"{stage} {path.name[:40]}")

    def file_done(self, outcome) -> None:
        if outcome.status in ("added", "updated"):
            self.chunks += outcome.chunks
            self.tokens += outcome.tokens
        self.bar.update(
            self.task, advance=1, chunks=self.chunks, tokens=self.tokens, last=Path(outcome.path).name[:40]
        )

    def stop(self) -> None:
        self.bar.stop()


@app.command("add")
@user_errors
def add(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    paths: Annotated[list[Path], typer.Argument(help="Files or folders.")],
    sync: Annotated[bool, typer.Option("--sync", help="Remove documents whose files are gone.")] = False,
    glob: Annotated[str | None, typer.Option(help="Only files matching this glob (e.g. '*.md').")] = None,
    backend: BackendOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest files: unchanged ones are skipped, changed ones replaced, broken ones reported."""
    from embedhub.kb.ingest import Ingestor

    collection = _knowledge_base().get(name)
    encoder = _encoder_for(collection, backend)
    progress = None if as_json else _RichProgress()
    try:
        report = Ingestor(collection, encoder, progress).ingest(paths, glob=glob, sync=sync)
    finally:
        if progress is not None and progress.task is not None:
            progress.stop()
    summary = report.summary()
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
        return
    typer.echo(
        f"added {summary['added']}, updated {summary['updated']}, skipped {summary['skipped']} (unchanged), "
        f"failed {summary['failed']}, removed {summary['removed']}, unsupported {summary['unsupported']}; "
        f"{summary['chunks']} chunks, {summary['tokens']} tokens "
        f"({summary['embedded_chunks']} embedded, {summary['cached_chunks']} from cache) "
        f"in {summary['seconds']}s"
    )
    for failure in summary["failures"]:
        typer.echo(f"  failed: {failure['path']}: {failure['error']}")


@app.command("search")
@user_errors
def search(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", help="Number of results.")] = 10,
    mode: Annotated[str, typer.Option(help="hybrid | dense | lexical")] = "hybrid",
    fusion: Annotated[
        str, typer.Option(help="Hybrid: weighted (normalised scores, the default) | rrf (k=60).")
    ] = "weighted",
    per_document: Annotated[
        int | None, typer.Option(help="At most this many chunks of one document (default: any).")
    ] = None,
    path_glob: Annotated[str | None, typer.Option("--path", help="Only paths matching this glob.")] = None,
    file_type: Annotated[list[str] | None, typer.Option("--type", help="Only these file types.")] = None,
    page_min: Annotated[int | None, typer.Option(help="Chunks on or after this page.")] = None,
    page_max: Annotated[int | None, typer.Option(help="Chunks on or before this page.")] = None,
    rerank: Annotated[
        bool,
        typer.Option(
            "--rerank",
            help="Rerank the best fused candidates: with the running server's reranker (embedhub serve "
            "--reranker), or here with --reranker / EMBEDHUB_RERANKER.",
        ),
    ] = False,
    reranker: Annotated[
        str | None,
        typer.Option(
            "--reranker",
            help="Load this reranker here and rerank with it: Qwen3-Reranker-0.6B|4B|8B (weights in "
            "EMBEDHUB_MODEL_DIRS) or a folder (Qwen3-Reranker or cross-encoder). Implies --rerank.",
            show_default=False,
        ),
    ] = None,
    rerank_candidates: Annotated[
        int | None, typer.Option(help="Fused candidates the reranker scores (default: max(3k, 30)).")
    ] = None,
    min_score: Annotated[
        float | None, typer.Option(help="Drop results whose reranker score is below this.")
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="Load the model here even when a server for this home runs.")
    ] = False,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            help="Load the model here with this backend (a running server keeps its own). "
            "[env: EMBEDHUB_BACKEND]",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Search a collection; results cite file, page and heading.

    When `embedhub serve` runs for the same EMBEDHUB_HOME, the search goes through it (the model
    is already loaded there: milliseconds instead of seconds); otherwise the model loads here."""
    settings = _settings(backend)
    request = {
        "query": query, "k": k, "mode": mode, "fusion": fusion, "per_document": per_document,
        "path_glob": path_glob,
        "file_types": list(file_type or ()), "page_min": page_min, "page_max": page_max,
        "rerank": rerank or reranker is not None, "rerank_candidates": rerank_candidates,
        "min_score": min_score,
    }  # fmt: skip
    results = None
    if not local and reranker is None and backend is None:
        results = _search_through_server(settings, name, request)
    if results is None:
        results = _search_here(settings, name, request, reranker, announce=not as_json)
    if as_json:
        keys = ("text", "score", "retrievers", "path", "page_start", "page_end", "heading_path",
                "char_start", "char_end", "snippet", "rerank_score")  # fmt: skip
        typer.echo(json.dumps({"results": [{key: r[key] for key in keys} for r in results]},
                              ensure_ascii=False))  # fmt: skip
        return
    _print_results(results)


def _search_through_server(settings: Settings, name: str, request: dict) -> list[dict] | None:
    """Results from a running server for this home; None when there is none or it is not ready."""
    import httpx

    from embedhub.server.discovery import auth_headers, find_server

    url = find_server(settings)
    if url is None:
        return None
    try:
        answer = httpx.post(
            f"{url}/v1/collections/{name}/search", json=request, headers=auth_headers(settings), timeout=120
        )
    except httpx.HTTPError:
        return None
    if answer.status_code == 503:
        return None  # still loading: search here instead
    body = answer.json()
    if answer.status_code != 200:
        raise EmbedhubError(body.get("error", {}).get("message") or f"server answered {answer.status_code}")
    return body["results"]


def _search_here(
    settings: Settings, name: str, request: dict, reranker_reference: str | None, announce: bool
):
    import sys
    import time

    from embedhub.kb.search import Searcher
    from embedhub.kb.store import SearchFilter

    collection = _knowledge_base().get(name)
    encoder = None
    if request["mode"] != "lexical":
        started = time.perf_counter()
        encoder = _encoder_for(collection, settings.backend)
        if announce:
            print(
                f"embedhub: loaded {collection.config.model} in {time.perf_counter() - started:.1f}s "
                "for this search; with `embedhub serve` running for this home, searches skip that",
                file=sys.stderr,
            )
    where = SearchFilter(request["path_glob"], tuple(request["file_types"]), request["page_min"],
                         request["page_max"])  # fmt: skip
    reranker = None
    if request["rerank"]:
        reference = reranker_reference or settings.reranker
        if reference is None:
            raise EmbedhubError(
                "--rerank needs a reranker: no `embedhub serve` for this home answered, so name one to "
                "load here with --reranker Qwen3-Reranker-0.6B (or a folder), or set EMBEDHUB_RERANKER"
            )
        from embedhub.models.reranker import load_reranker

        started = time.perf_counter()
        reranker = load_reranker(reference, settings)
        if announce:
            print(
                f"embedhub: loaded reranker {reranker.name} in {time.perf_counter() - started:.1f}s",
                file=sys.stderr,
            )
    found = Searcher(collection, encoder, reranker).search(
        request["query"], k=request["k"], mode=request["mode"], where=where, fusion=request["fusion"],
        per_document=request["per_document"], rerank=request["rerank"],
        rerank_candidates=request["rerank_candidates"], min_score=request["min_score"],
    )  # fmt: skip
    return [result.to_dict() for result in found]


def _print_results(results: list[dict]) -> None:
    from rich.console import Console

    console = Console()
    if not results:
        console.print("no results")
    for rank, result in enumerate(results, start=1):
        pages = ""
        if result["page_start"] is not None:
            same = result["page_start"] == result["page_end"]
            pages = (
                f" p.{result['page_start']}" if same else f" pp.{result['page_start']}-{result['page_end']}"
            )
        heading = " > ".join(result["heading_path"])
        console.print(
            f"[bold]{rank}.[/bold] {result['path']}{pages}  [dim]{heading}[/dim]  "
            f"({' + '.join(result['retrievers'])})"
            + (f"  rerank {result['rerank_score']:.3f}" if result.get("rerank_score") is not None else ""),
            highlight=False,
        )
        snippet = result["snippet"].replace("<mark>", "[bold yellow]").replace("</mark>", "[/bold yellow]")
        console.print("   " + snippet.replace("\n", " "), highlight=False)


@app.command("list")
@user_errors
def list_collections(as_json: JsonOption = False) -> None:
    """Collections and their sizes."""
    knowledge_base = _knowledge_base()
    rows = [knowledge_base.get(name).info() for name in knowledge_base.names()]
    if as_json:
        typer.echo(json.dumps({"collections": rows}, ensure_ascii=False))
        return
    if not rows:
        typer.echo(f"no collections yet under {knowledge_base.root}")
    for row in rows:
        typer.echo(
            f"{row['name']}: {row['model']} ({row['dimensions']} dims), {row['done']} documents, "
            f"{row['stored_chunks']} chunks, {row['failed']} failed"
        )


@app.command("info")
@user_errors
def info(name: Annotated[str, typer.Argument(help="Collection name.")], as_json: JsonOption = False) -> None:
    """A collection's model binding, sizes, and failed files with reasons."""
    collection = _knowledge_base().get(name)
    details = collection.info()
    details["failures"] = [
        {"path": r.path, "error": r.error} for r in collection.manifest.documents() if r.status == "failed"
    ]
    if as_json:
        typer.echo(json.dumps(details, ensure_ascii=False))
        return
    for key, value in details.items():
        if key != "failures":
            typer.echo(f"{key}: {value}")
    for failure in details["failures"]:
        typer.echo(f"failed: {failure['path']}: {failure['error']}")


@app.command("remove")
@user_errors
def remove(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to remove from the collection.")],
) -> None:
    """Remove documents (by file, or everything under a folder)."""
    from embedhub.kb.ingest import remove_paths

    removed = remove_paths(_knowledge_base().get(name), paths)
    if not removed:
        raise EmbedhubError("no document in the collection matches those paths")
    typer.echo(f"removed {len(removed)} document(s)")


@app.command("reembed")
@user_errors
def reembed_command(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    model: Annotated[str, typer.Option("--model", "-m", help="The new embedding model.")],
    dimensions: Annotated[int | None, typer.Option(help="MRL dimensions for the new index.")] = None,
    instruction: Annotated[str | None, typer.Option(help="Query instruction for the new model.")] = None,
) -> None:
    """Re-embed every document with another model; resumable; swaps in the new index when done."""
    from rich.progress import Progress

    from embedhub.kb.reembed import reembed
    from embedhub.models.loading import load_encoder

    settings = Settings()
    encoder = load_encoder(model, settings)
    with Progress(transient=True) as bar:
        task = bar.add_task("re-embedding", total=None)
        report = reembed(
            _knowledge_base(),
            name,
            encoder,
            model_reference=model,
            dimensions=dimensions,
            instruction=instruction,
            on_document=lambda done, total: bar.update(task, completed=done, total=total),
        )
    typer.echo(
        f"{name} now uses {encoder.spec.name}: {report.documents} documents "
        f"({report.reused} already done by an earlier run), {report.embedded_chunks} chunks embedded"
    )


@app.command("drop")
@user_errors
def drop(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a collection and everything in it."""
    if not yes and not typer.confirm(f"drop collection {name!r} and all its data?"):
        raise typer.Exit(1)
    _knowledge_base().drop(name)
    typer.echo(f"dropped {name}")
