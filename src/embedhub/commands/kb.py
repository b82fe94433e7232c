"""`embedhub kb ...`: collections from the command line, with a progress bar and a summary.

Imported by every `embedhub` command, so what only some commands need is imported where they use
it, measured after `import embedhub.cli` (0.24 s in all): the knowledge base itself (collection,
store, search, ask: numpy, 0.15-0.25 s), models (torch), the ingest pipeline and Ray, and rich
(console 25 ms, progress 30 ms) for human output that `--json` and `kb list` do not print."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from embedhub.accounts.store import AccountStore
from embedhub.commands.accounts import CLI_PRINCIPAL
from embedhub.commands.support import user_errors
from embedhub.config import Settings
from embedhub.errors import EmbedhubError
from embedhub.kb.lexical import Analyzer
from embedhub.kb.ocr import page_list

app = typer.Typer(help="Knowledge bases: create, add files, search, ask.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
BackendOption = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="torch | torch-bf16 | torch-int8 | onnx-int8 | auto. [env: EMBEDHUB_BACKEND]",
        show_default=False,
    ),
]

#: search and ask: they go through a running server for this home unless one of these is given
LocalOption = Annotated[
    bool, typer.Option("--local", help="Load the model here even when a server for this home runs.")
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help="Your key for the running `embedhub serve` (with accounts on: a user's key, and the "
        "server applies that user's access). [env: EMBEDHUB_API_KEY]",
        show_default=False,
    ),
]
LoadHereBackendOption = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="Load the model here with this backend (a running server keeps its own). "
        "[env: EMBEDHUB_BACKEND]",
        show_default=False,
    ),
]


def _settings(backend: str | None = None) -> Settings:
    settings = Settings()
    return settings.model_copy(update={"backend": backend}) if backend else settings


def _knowledge_base(settings: Settings | None = None):
    from embedhub.kb.collection import KnowledgeBase

    return KnowledgeBase(settings or Settings())


AnnMinRowsOption = Annotated[
    int | None,
    typer.Option(
        help="Build the ANN vector index once the collection holds this many chunks "
        "[env: EMBEDHUB_ANN_MIN_ROWS; default 50000].",
        min=1,
        show_default=False,
    ),
]


def _index_settings(ann_min_rows: int | None) -> Settings:
    settings = Settings()
    return settings.model_copy(update={"ann_min_rows": ann_min_rows}) if ann_min_rows else settings


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
    store: Annotated[
        str, typer.Option(help="Vector store: lancedb (embedded, in the collection folder) or milvus.")
    ] = "lancedb",
    uri: Annotated[
        str | None,
        typer.Option(
            help="milvus: the server or cluster, e.g. http://host:19530 (token: EMBEDHUB_MILVUS_TOKEN); "
            "default: a Milvus Lite file in the collection folder."
        ),
    ] = None,
    backend: BackendOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Create a collection bound to one model, its dimensions and its query instruction.

    Through a running `embedhub serve` for this home when there is one (it binds the collection to
    one of its served models, and with accounts on makes you its owner), here otherwise; neither
    loads the model's weights."""
    from embedhub.access.contract import CreateOptions
    from embedhub.kb.store import check_store

    Analyzer(lexical_language)  # a wrong language fails before the model is looked up
    check_store(store, uri)
    options = CreateOptions(
        model=model,
        dimensions=dimensions,
        instruction=instruction,
        chunk_tokens=chunk_tokens,
        chunk_overlap=chunk_overlap,
        lexical_language=lexical_language,
        store=store,
        store_uri=uri,
        backend=backend,
    )
    config = _change(_client_settings(backend, api_key), "kb create").run(
        lambda knowledge_base: knowledge_base.create(name, options)
    )
    typer.echo(
        f"created {name}: model {config['model']}, {config['dimensions']} dims, "
        f"chunks of {config['chunk_tokens']} tokens, store {_store_label(config)}"
    )


def _store_label(config: dict) -> str:
    return config["store"] + (f" at {config['store_uri']}" if config.get("store_uri") else "")


def _change(settings: Settings, what: str):
    """Through a running server for this home, or here (commands/kb_reach.py `Change`)."""
    from embedhub.commands.kb_reach import Change

    return Change(settings, what=what, say=lambda line: typer.echo(line, err=True))


@app.command("add")
@user_errors
def add(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    paths: Annotated[list[Path], typer.Argument(help="Files or folders.")],
    sync: Annotated[bool, typer.Option("--sync", help="Remove documents whose files are gone.")] = False,
    glob: Annotated[str | None, typer.Option(help="Only files matching this glob (e.g. '*.md').")] = None,
    ann_min_rows: AnnMinRowsOption = None,
    backend: BackendOption = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Parse, chunk and embed on Ray workers (pip install 'embedhub[ray]'): auto (a local "
            "Ray for this run, 127.0.0.1 only), HOST:PORT (a cluster this machine is a node of) or "
            "ray://HOST:PORT (Ray Client); 'off' ingests here. [env: EMBEDHUB_RAY_ADDRESS]",
            show_default=False,
        ),
    ] = None,
    ray_actors: Annotated[
        int | None,
        typer.Option(
            "--ray-actors",
            min=1,
            help="Model copies on the cluster (default: its CPUs / EMBEDHUB_RAY_ACTOR_CPUS). "
            "[env: EMBEDHUB_RAY_ACTORS]",
            show_default=False,
        ),
    ] = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest files: unchanged ones are skipped, changed ones replaced, broken ones reported.

    Through a running `embedhub serve` for this home when there is one (it reads the files in
    place, within its folder roots, and applies your access with --api-key / EMBEDHUB_API_KEY; the
    bar follows its jobs), here otherwise.

    Every file that failed (unreadable, empty, binary, unparsable, refused) or was left out (no
    loader for its type) is named with the reason; `--json` lists every file's outcome under "files".

    Exit codes: 0 every file was added, updated, unchanged or removed as asked; 1 some files
    failed or are unsupported (the others were ingested); 2 a usage error (a wrong option, a
    missing path or collection: nothing was ingested).
    """
    from embedhub.access.contract import AddOptions

    settings = _client_settings(backend, api_key)
    address = ray if ray is not None else settings.ray_address
    if address is not None and address.strip().lower() in ("off", "none", ""):
        address = None
    if address is not None:
        from embedhub.kb.distributed import import_ray

        import_ray()  # without Ray: say how to install it before anything loads
    options = AddOptions(tuple(paths), glob, sync, address, ray_actors, ann_min_rows, backend)
    from embedhub.commands.ingest_progress import IngestProgressBar

    progress = None if as_json else IngestProgressBar()
    try:
        summary = _change(settings, "kb add").run(
            lambda knowledge_base: knowledge_base.add_paths(name, options, progress)
        )
    finally:
        if progress is not None and progress.task is not None:
            progress.stop()
    problems = [item for item in summary["files"] if item["status"] in ADD_PROBLEMS]
    exit_code = ADD_SOME_FAILED if problems else 0
    if as_json:
        typer.echo(json.dumps({**summary, "exit_code": exit_code}, ensure_ascii=False))
        raise typer.Exit(exit_code)
    ray_run = summary.get("ray")
    if ray_run is not None:
        typer.echo(
            f"on Ray ({ray_run['address']}): {ray_run['actors']} actor(s) started, "
            f"{ray_run['replaced']} replacing workers that died"
        )
    embedded = (
        f" ({summary['embedded_chunks']} embedded, {summary['cached_chunks']} from cache)"
        if "embedded_chunks" in summary
        else ""
    )
    typer.echo(
        f"added {summary['added']}, updated {summary['updated']}, skipped {summary['skipped']} (unchanged), "
        f"failed {summary['failed']}, removed {summary['removed']}, unsupported {summary['unsupported']}; "
        f"{summary['chunks']} chunks, {summary['tokens']} tokens{embedded} "
        f"in {summary['seconds']}s"
    )
    if summary.get("still_running"):
        typer.echo(f"  {summary['still_running']} file(s) still being ingested by the server")
    if summary.get("ignored"):
        typer.echo(f"  {' and '.join(summary['ignored'])} not used: the server ingests with its own settings")
    for uploaded in summary.get("uploaded", []):
        typer.echo(f"  uploaded: {uploaded} (outside the server's folder roots: sent as copies)")
    for problem in problems:
        typer.echo(f"  {problem['status']}: {problem['path']}: {problem['error']}")
    for warning in summary.get("warnings", []):
        typer.echo(f"  warning: {warning['path']}: {warning['warning']}")
    if problems:
        typer.echo(f"{len(problems)} file(s) not ingested (exit code {ADD_SOME_FAILED})", err=True)
        typer.echo(
            f"`embedhub kb failures {shlex.quote(name)}` lists the collection's failed files until they "
            "are dismissed (--dismiss PATH, --dismiss-all)",
            err=True,
        )
    raise typer.Exit(exit_code)


#: what `kb add` names with the reason, and exits ADD_SOME_FAILED for (see its help)
ADD_PROBLEMS = ("failed", "unsupported")
ADD_SOME_FAILED = 1


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
    exact: Annotated[
        bool,
        typer.Option(
            "--exact", help="Dense side: compare with every stored vector, not the ANN index (slow)."
        ),
    ] = False,
    local: LocalOption = False,
    api_key: ApiKeyOption = None,
    backend: LoadHereBackendOption = None,
    as_json: JsonOption = False,
) -> None:
    """Search a collection; results cite file, page and heading.

    When `embedhub serve` runs for the same EMBEDHUB_HOME, the search goes through it (the model
    is already loaded there: milliseconds instead of seconds), with --api-key / EMBEDHUB_API_KEY as
    your key (with accounts on, the server then applies your access); otherwise the model loads
    here, and stderr says why."""
    from embedhub.kb.search import SearchOptions  # numpy: 0.25 s that `kb list` does not pay
    from embedhub.kb.store import SearchFilter

    rerank = rerank or reranker is not None
    options = SearchOptions(
        query,
        k=k,
        mode=mode,
        where=SearchFilter(path_glob, tuple(file_type or ()), page_min, page_max),
        fusion=fusion,
        per_document=per_document,
        rerank=rerank,
        rerank_candidates=rerank_candidates,
        min_score=min_score,
        exact=exact,
    )
    settings = _client_settings(backend, api_key)

    def run(knowledge_base) -> list[dict]:
        with knowledge_base.searcher(name, rerank=rerank, needs_model=mode != "lexical") as context:
            return [result.to_dict() for result in context.searcher.find(options)]

    results = _reach(settings, "search", rerank, reranker, local, backend, as_json).run(run)
    if as_json:
        keys = (
            "text",
            "score",
            "retrievers",
            "path",
            "page_start",
            "page_end",
            "heading_path",
            "char_start",
            "char_end",
            "snippet",
            "rerank_score",
        )
        typer.echo(
            json.dumps({"results": [{key: r[key] for key in keys} for r in results]}, ensure_ascii=False)
        )
        return
    _print_results(results)


def _client_settings(backend: str | None, api_key: str | None) -> Settings:
    settings = _settings(backend)
    return settings.model_copy(update={"api_key": api_key}) if api_key else settings


def _reach(settings: Settings, what: str, rerank: bool, reranker, local: bool, backend, as_json: bool):
    """Through a running server for this home, or here (commands/kb_reach.py)."""
    from embedhub.commands.kb_reach import Reach  # the search code: numpy, 0.25 s `kb list` skips

    flags = (("--local", local), ("--reranker", reranker is not None), ("--backend", backend is not None))
    here_because = next((flag for flag, given in flags if given), None)
    say = (lambda line: None) if as_json else (lambda line: typer.echo(line, err=True))
    return Reach(settings, what=what, rerank=rerank, reranker=reranker, here_because=here_because, say=say)


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
        if result.get("kind") == "table":  # a row per line, as the UI draws it
            for row in result["snippet"].splitlines():
                console.print("   " + _rich_marks(row), highlight=False, soft_wrap=True)
        else:
            console.print("   " + _rich_marks(result["snippet"]), highlight=False)


@app.command("ask")
@user_errors
def ask(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    question: Annotated[str, typer.Argument(help="The question.")],
    k: Annotated[int, typer.Option("-k", help="Passages retrieved and sent as evidence.")] = 6,
    mode: Annotated[str, typer.Option(help="hybrid | dense | lexical")] = "hybrid",
    per_document: Annotated[
        int | None, typer.Option(help="At most this many passages of one document (default: any).")
    ] = None,
    rerank: Annotated[
        bool,
        typer.Option(
            "--rerank",
            help="Rerank the best fused candidates before the top k are sent: with the running "
            "server's reranker, or here with --reranker / EMBEDHUB_RERANKER.",
        ),
    ] = False,
    reranker: Annotated[
        str | None,
        typer.Option(
            "--reranker",
            help="Load this reranker here: Qwen3-Reranker-0.6B|4B|8B or a folder. Implies --rerank.",
            show_default=False,
        ),
    ] = None,
    conversation: Annotated[
        Path | None,
        typer.Option(
            help="A JSON file holding the conversation: earlier turns are read from it (follow-up "
            "questions) and this question and its answer are appended to it."
        ),
    ] = None,
    local: LocalOption = False,
    api_key: ApiKeyOption = None,
    backend: LoadHereBackendOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer a question from a collection, citing its passages as [n] (file, page, heading).

    The answer is written by the OpenAI-compatible chat endpoint in EMBEDHUB_CHAT_URL (with
    EMBEDHUB_CHAT_MODEL and, if needed, EMBEDHUB_CHAT_API_KEY): Ollama, llama.cpp's server, vLLM,
    SGLang or a hosted API. Without one, the ranked passages are shown with their best sentences
    highlighted. Retrieval goes through a running `embedhub serve` for this home when there is one;
    the chat endpoint is always the one configured here."""
    from embedhub.kb.ask import AskOptions, answer_events, collect, gather_evidence
    from embedhub.kb.chat import ChatSettings

    rerank = rerank or reranker is not None
    history = tuple(_read_conversation(conversation)) if conversation else ()
    options = AskOptions(question, history, k=k, mode=mode, per_document=per_document)
    settings = _client_settings(backend, api_key)

    def run(knowledge_base):
        with knowledge_base.searcher(name, rerank=rerank, needs_model=mode != "lexical") as context:
            return gather_evidence(context.searcher, options)

    retrieval = _reach(settings, "question", rerank, reranker, local, backend, as_json).run(run)
    events = answer_events(options, retrieval, chat=ChatSettings.from_settings(settings))
    if as_json:
        answer = collect(events)
        typer.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
    else:
        answer = _stream_answer(events)
    if conversation and answer.status == "answered":
        turns = [
            *options.history,
            {"role": "user", "content": options.question},
            {"role": "assistant", "content": answer.answer},
        ]
        conversation.write_text(json.dumps(turns, ensure_ascii=False, indent=1), encoding="utf-8")


def _read_conversation(path: Path) -> list:
    if not path.exists():
        return []
    try:
        turns = json.loads(path.read_text(encoding="utf-8") or "[]")
    except (OSError, ValueError) as error:
        raise EmbedhubError(f"cannot read the conversation {path}: {error}") from None
    if not isinstance(turns, list):
        raise EmbedhubError(f"{path} is not a conversation: expected a JSON list of {{role, content}}")
    return turns


def _stream_answer(events):
    """Print the answer as it arrives, then its sources; the evidence alone when there is no
    answer. A chat failure prints the evidence, then raises (one line, exit code 2)."""
    from rich.console import Console
    from rich.markup import escape

    from embedhub.kb.ask import DoneEvent, ErrorEvent, EvidenceEvent, TokenEvent

    console = Console(highlight=False)
    evidence, wrote = [], False
    for event in events:
        if isinstance(event, EvidenceEvent):
            evidence = event.evidence
        elif isinstance(event, TokenEvent):
            sys.stdout.write(event.text)
            sys.stdout.flush()
            wrote = True
        elif isinstance(event, ErrorEvent):
            if wrote:
                sys.stdout.write("\n\n")
            _print_evidence(console, "Evidence (no answer):", evidence, with_text=True)
            raise event.error
        elif isinstance(event, DoneEvent):
            answer = event.answer
            if answer.status != "answered":
                console.print(f"[yellow]{escape(answer.message or '')}[/yellow]\n")
                _print_evidence(console, "Evidence:", evidence, with_text=True)
                return answer
            sys.stdout.write("\n\n")
            if answer.message:
                console.print(f"[yellow]{escape(answer.message)}[/yellow]")
            cited = {citation.number for citation in answer.citations}
            if cited:
                _print_evidence(console, "Sources:", [item for item in evidence if item.number in cited])
            else:
                _print_evidence(console, "The answer cites no passage; evidence sent:", evidence)
            return answer
    raise EmbedhubError("the answer ended early; ask again")


def _print_evidence(console, title: str, evidence, with_text: bool = False) -> None:
    from rich.markup import escape

    console.print(f"[bold]{title}[/bold]")
    for item in evidence:
        result = item.result
        pages = ""
        if result.page_start is not None:
            same = result.page_start == result.page_end
            pages = f" p.{result.page_start}" if same else f" pp.{result.page_start}-{result.page_end}"
        heading = escape(" > ".join(result.heading_path))
        console.print(f"[bold]\\[{item.number}][/bold] {escape(result.path)}{pages}  [dim]{heading}[/dim]")
        if with_text:
            console.print("    " + _rich_marks(" … ".join(item.highlights) or result.snippet))


def _rich_marks(snippet: str) -> str:
    """An HTML snippet with <mark>ed terms as rich markup (the rest escaped: text may hold [tags])."""
    from rich.markup import escape

    styles = {"<mark>": "[bold yellow]", "</mark>": "[/bold yellow]"}
    pieces = re.split(r"(</?mark>)", snippet.replace("\n", " "))
    return "".join(styles.get(piece) or escape(html.unescape(piece)) for piece in pieces)


@app.command("list")
@user_errors
def list_collections(api_key: ApiKeyOption = None, as_json: JsonOption = False) -> None:
    """Collections and their sizes (through a running `embedhub serve`: those your key may see)."""
    settings = _client_settings(None, api_key)
    rows = _change(settings, "kb list").run(lambda knowledge_base: knowledge_base.collections())
    if as_json:
        typer.echo(json.dumps({"collections": rows}, ensure_ascii=False))
        return
    if not rows:
        typer.echo(f"no collections yet under {settings.home / 'collections'}")
    for row in rows:
        typer.echo(
            f"{row['name']}: {row['model']} ({row['dimensions']} dims), {row['done']} documents, "
            f"{row['stored_chunks']} chunks, {row['failed']} failed, store {row['store']}"
            + (f" at {row['store_uri']}" if row["store_uri"] else "")
        )


@app.command("info")
@user_errors
def info(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """A collection's model binding, sizes, and failed files with reasons."""
    settings = _client_settings(None, api_key)
    details = _change(settings, "kb info").run(lambda knowledge_base: knowledge_base.info(name))
    if as_json:
        typer.echo(json.dumps(details, ensure_ascii=False))
        return
    for key, value in details.items():
        if key == "vector_index":
            value = describe_vector_index(value)
        elif key.endswith("_at") and isinstance(value, int | float):
            value = _local_time(value)
        elif value is None or value == "":
            value = "-"
        if key not in ("failures", "ocr", "warnings"):
            typer.echo(f"{key}: {value}")
    for failure in details["failures"]:
        typer.echo(f"failed: {failure['path']}: {failure['error']}")
    for item in details.get("ocr", []):
        typer.echo(f"OCR ({item['engine']}): {item['path']}: page(s) {page_list(item['pages'])}")
    for item in details.get("warnings", []):
        typer.echo(f"warning: {item['path']}: {item['warning']}")


@app.command("failures")
@user_errors
def failures(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    dismiss: Annotated[
        list[str] | None,
        typer.Option(
            "--dismiss",
            help="Forget this file's failure (its path as listed, or the file's path here); repeatable.",
            show_default=False,
        ),
    ] = None,
    dismiss_all: Annotated[bool, typer.Option("--dismiss-all", help="Forget every kept failure.")] = False,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Files that failed or were skipped (at upload or while ingesting), with the reason: kept
    through restarts until dismissed or until the file is ingested after all (the web UI's
    Failures list). Dismissing needs edit access to the collection.

    Through a running `embedhub serve` for this home when there is one (with your key), here
    otherwise."""
    if dismiss and dismiss_all:
        raise EmbedhubError("give --dismiss PATH or --dismiss-all, not both")
    settings = _client_settings(None, api_key)
    what = "kb failures" + (" --dismiss-all" if dismiss_all else " --dismiss" if dismiss else "")

    def call(knowledge_base) -> dict:
        if dismiss_all:
            return {"dismissed": knowledge_base.dismiss_failures(name, None), "paths": None}
        if dismiss:
            kept = [failure["path"] for failure in knowledge_base.failures(name)]
            paths = [_kept_path(given, kept, name) for given in dismiss]
            paths = list(dict.fromkeys(paths))
            return {"dismissed": knowledge_base.dismiss_failures(name, paths), "paths": paths}
        return {"failures": knowledge_base.failures(name)}

    result = _change(settings, what).run(call)
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    if "dismissed" in result:
        typer.echo(f"dismissed {result['dismissed']} failure(s) of {name}")
        return
    rows = result["failures"]
    if not rows:
        typer.echo(f"no kept failures in {name}")
        return
    table = [("PATH", "STATUS", "WHEN", "REASON")] + [
        (row["path"], f"{row['status']} ({row['stage']})", _local_time(row["at"]), row["reason"])
        for row in rows
    ]
    widths = [max(len(line[column]) for line in table) for column in range(3)]
    for line in table:
        typer.echo(
            "  ".join([*(cell.ljust(width) for cell, width in zip(line, widths, strict=False)), line[3]])
        )
    typer.echo(f"{len(rows)} failure(s); dismiss with --dismiss PATH or --dismiss-all")


def _kept_path(given: str, kept: list[str], name: str) -> str:
    """The stored path a `--dismiss` argument names: as listed, or a file's path here (relative
    to the working folder, as `kb add` stores it resolved)."""
    if given in kept:
        return given
    resolved = str(Path(given).expanduser().resolve())
    if resolved in kept:
        return resolved
    raise EmbedhubError(
        f"collection {name!r} keeps no failure for {given!r}; `embedhub kb failures {shlex.quote(name)}` "
        "lists the paths it keeps"
    )


@app.command("index")
@user_errors
def index(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Retrain the index from scratch (new partitions).")
    ] = False,
    ann_min_rows: AnnMinRowsOption = None,
    force: Annotated[
        bool, typer.Option("--force/--threshold", help="Build at any size, or only past --ann-min-rows.")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Build or update the collection's ANN vector index now (ingests do it past
    --ann-min-rows chunks); dense search then uses it, `kb search --exact` still scans."""
    collection = _knowledge_base(_index_settings(ann_min_rows)).get(name)
    started = time.perf_counter()
    changed = collection.maintain_index(force=force, rebuild=rebuild)
    details = {
        "changed": changed,
        "seconds": round(time.perf_counter() - started, 3),
        "vector_index": collection.store.vector_index_info(),
    }
    if as_json:
        typer.echo(json.dumps(details, ensure_ascii=False))
        return
    state = "updated" if changed else "already current"
    typer.echo(
        f"{name}: vector index {state} in {details['seconds']} s: "
        f"{describe_vector_index(details['vector_index'])}"
    )


def _local_time(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).astimezone().isoformat(sep=" ", timespec="seconds")


#: how `describe_vector_index` names the index's parameters
_INDEX_LABELS = {
    "num_partitions": "partitions",
    "m": "M",
    "ef_construction": "efConstruction",
    "nprobes": "partitions probed",
    "refine_factor": "refine factor",
    "ef": "ef",
}


def describe_vector_index(info: dict) -> str:
    """One line for people: the `vector_index` object of `kb info --json` / the API."""
    if info.get("type") == "exact":
        return (
            f"none: exact search (an index is built at {info.get('min_rows', 0):,} chunks, or now "
            "with `embedhub kb index NAME`)"
        )
    parts = [f"{info['type']}, {info.get('rows_indexed', 0):,} chunks indexed"]
    if info.get("rows_unindexed"):
        parts[0] += f" ({info['rows_unindexed']:,} newer ones scanned until they are folded in)"
    built = [
        f"{_INDEX_LABELS[key]} {info[key]:,}"
        for key in ("num_partitions", "m", "ef_construction")
        if key in info
    ]
    if built:
        parts.append(", ".join(built))
    if info.get("search"):
        searched = [f"{_INDEX_LABELS.get(key, key)} {value:,}" for key, value in info["search"].items()]
        parts.append("search: " + ", ".join(searched))
    if info.get("trained_at"):
        parts.append(f"trained {_local_time(info['trained_at'])} in {info.get('build_seconds', 0):.1f} s")
    return "; ".join(parts)


@app.command("remove")
@user_errors
def remove(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to remove from the collection.")],
    api_key: ApiKeyOption = None,
) -> None:
    """Remove documents (by file, or everything under a folder)."""
    removed = _change(_client_settings(None, api_key), "kb remove").run(
        lambda knowledge_base: knowledge_base.remove_paths(name, paths)
    )
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
    from embedhub.models.backends import load_encoder

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
    api_key: ApiKeyOption = None,
) -> None:
    """Delete a collection and everything in it."""
    if not yes and not typer.confirm(f"drop collection {name!r} and all its data?"):
        raise typer.Exit(1)
    _change(_client_settings(None, api_key), "kb drop").run(lambda knowledge_base: knowledge_base.drop(name))
    typer.echo(f"dropped {name}")


def _guard():
    """The collections as an admin on this machine sees them (accounts are managed here)."""
    from embedhub.accounts.guard import CollectionGuard

    settings = Settings()
    return CollectionGuard(_knowledge_base(), AccountStore.for_home(settings.home))


def _print_access(name: str, access: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"name": name, **access}, ensure_ascii=False))
        return
    typer.echo(f"{name}: owner {access['owner'] or '(none: admins only)'}")
    for share in access["shares"]:
        typer.echo(f"  {share['kind']} {share['name']}: {share['role']}")


@app.command("access")
@user_errors
def access(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Who owns a collection and whom it is shared with (accounts, see `embedhub users`)."""
    found = _change(_client_settings(None, api_key), "kb access").run(
        lambda knowledge_base: knowledge_base.access(name)
    )
    _print_access(name, found, as_json)


@app.command("chown")
@user_errors
def chown(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    user: Annotated[str, typer.Argument(help="The new owner (a user name).")],
    as_json: JsonOption = False,
) -> None:
    """Give a collection to a user (one made before accounts, or by `kb create`, has no owner
    and only admins see it)."""
    _print_access(name, _guard().chown(CLI_PRINCIPAL, name, user), as_json)


ShareWith = Annotated[str | None, typer.Option("--user", help="Share with this user.")]
ShareWithGroup = Annotated[str | None, typer.Option("--group", help="Share with this group.")]


def _member(user: str | None, group: str | None) -> tuple[str, str]:
    if (user is None) == (group is None):
        raise EmbedhubError("give exactly one of --user NAME or --group NAME")
    return ("user", user) if user is not None else ("group", group)  # type: ignore[return-value]


@app.command("share")
@user_errors
def share(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    user: ShareWith = None,
    group: ShareWithGroup = None,
    role: Annotated[
        str, typer.Option("--role", help="viewer (search, ask) | editor (also change documents).")
    ] = "viewer",
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Share a collection with a user or a group (its owner or an admin)."""
    kind, member = _member(user, group)
    shared = _change(_client_settings(None, api_key), "kb share").run(
        lambda knowledge_base: knowledge_base.share(name, kind, member, role)
    )
    _print_access(name, shared, as_json)


@app.command("unshare")
@user_errors
def unshare(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    user: ShareWith = None,
    group: ShareWithGroup = None,
    api_key: ApiKeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop sharing a collection with a user or a group (its owner or an admin)."""
    kind, member = _member(user, group)
    unshared = _change(_client_settings(None, api_key), "kb unshare").run(
        lambda knowledge_base: knowledge_base.unshare(name, kind, member)
    )
    _print_access(name, unshared, as_json)
