"""The `embedhub` command line. Flags map onto `Settings`; errors print to stderr with exit code 2."""

from __future__ import annotations

import importlib
import json
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from embedhub.cli_support import user_errors
from embedhub.config import Settings
from embedhub.errors import EmbedhubError, InputTooLongError, ModelLoadError

CLI_TRUNCATE_HINT = "shorten or split it, or pass --truncate to cut it to the limit"


class _NotImportedYet(TyperGroup):
    """Holds a command group's place (and so its place in `--help`) until it is first used."""


#: command groups whose modules are imported only when the group is used: `embedhub eval` builds
#: its commands from every task definition (numpy and eight task modules, about 0.1 s), which
#: `kb list` or a `kb search` answered by a running server (0.5 s in all) should not pay
_IMPORTED_ON_USE = {"eval": "embedhub.eval.cli"}


class _Commands(TyperGroup):
    def get_command(self, ctx, cmd_name: str):
        command = super().get_command(ctx, cmd_name)
        if isinstance(command, _NotImportedYet):
            holder = typer.Typer()  # the group built exactly as `app.add_typer` would build it
            holder.add_typer(importlib.import_module(_IMPORTED_ON_USE[cmd_name]).app, name=cmd_name)
            command = self.commands[cmd_name] = typer.main.get_command(holder).commands[cmd_name]
        return command


app = typer.Typer(
    cls=_Commands,
    help="embedhub: Qwen3-Embedding server, knowledge base and evaluation.",
    no_args_is_help=True,
)
models_app = typer.Typer(help="Known and local models.", no_args_is_help=True)
app.add_typer(models_app, name="models")


def _register_subcommands() -> None:
    from embedhub.accounts.cli import audit, groups_app, users_app
    from embedhub.kb.cli import app as kb_app

    app.add_typer(kb_app, name="kb")
    app.add_typer(typer.Typer(cls=_NotImportedYet), name="eval")
    app.add_typer(users_app, name="users")
    app.add_typer(groups_app, name="groups")
    app.command("audit")(audit)


ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Registry name, local folder, .gguf file, hub id or remote:URL#MODEL (default: auto).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
BackendOption = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="torch | torch-bf16 | torch-int8 | onnx-int8 | gguf | remote | auto (per-model default). "
        "[env: EMBEDHUB_BACKEND]",
        show_default=False,
    ),
]


def _settings(model: str | None = None, backend: str | None = None) -> Settings:
    settings = Settings()
    updates = {key: value for key, value in (("model", model), ("backend", backend)) if value}
    return settings.model_copy(update=updates) if updates else settings


def _check_backend(settings: Settings) -> None:
    """An unknown or not-installed backend fails before any weights load."""
    from embedhub.models.backends import AUTO, get_backend

    if settings.backend.strip().lower() != AUTO:
        get_backend(settings.backend)


def _read_texts(texts: list[str] | None) -> list[str]:
    if texts:
        return texts
    lines = [line.rstrip("\n") for line in sys.stdin]
    return [line for line in lines if line.strip()]


@app.command()
@user_errors
def embed(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to embed (stdin lines when none).")] = None,
    model: ModelOption = None,
    query: Annotated[bool, typer.Option("--query", help="Embed as queries (with the instruction).")] = False,
    document: Annotated[bool, typer.Option("--document", help="Embed as documents (default).")] = False,
    instruction: Annotated[str | None, typer.Option(help="Query instruction overriding the default.")] = None,
    dimensions: Annotated[
        int | None, typer.Option(help="Matryoshka output size (truncate, then normalise).")
    ] = None,
    truncate: Annotated[
        bool, typer.Option("--truncate", help="Cut over-long inputs instead of failing.")
    ] = False,
    backend: BackendOption = None,
    as_json: JsonOption = False,
) -> None:
    """Embed texts and print the vectors."""
    from embedhub.models.loading import load_encoder

    if query and document:
        raise EmbedhubError("choose one of --query and --document")
    if instruction is not None and not query:
        query = True  # an instruction only makes sense on a query
    values = _read_texts(texts)
    if not values:
        raise EmbedhubError("no text given: pass TEXT arguments or lines on stdin")
    settings = _settings(model, backend)
    _check_backend(settings)
    encoder = load_encoder(settings.model, settings)
    try:
        result = encoder.encode(
            values,
            kind="query" if query else "document",
            instruction=instruction,
            dimensions=dimensions,
            truncate=truncate,
        )
    except InputTooLongError as error:
        raise error.with_hint(CLI_TRUNCATE_HINT) from None
    if as_json:
        payload = {
            "model": encoder.spec.name,
            "dimensions": result.dimensions,
            "data": [
                {"index": index, "embedding": [float(x) for x in vector]}
                for index, vector in enumerate(result.vectors)
            ],
            "usage": {"prompt_tokens": result.prompt_tokens},
        }
        typer.echo(json.dumps(payload))
        return
    typer.echo(f"model {encoder.spec.name}, {result.dimensions} dimensions, {result.prompt_tokens} tokens")
    for index, (vector, tokens) in enumerate(zip(result.vectors, result.token_counts, strict=True)):
        head = ", ".join(f"{x:+.4f}" for x in vector[:6])
        typer.echo(f"[{index}] {tokens:>5} tokens  [{head}, ...]")


@app.command()
@user_errors
def tokenize(
    text: Annotated[str, typer.Argument(help="Text to tokenise.")],
    model: ModelOption = None,
    query: Annotated[
        bool, typer.Option("--query", help="Tokenise as a query (with the instruction).")
    ] = False,
    instruction: Annotated[str | None, typer.Option(help="Query instruction overriding the default.")] = None,
    truncate: Annotated[
        bool, typer.Option("--truncate", help="Cut an over-long input as `embed --truncate` would.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show the token ids exactly as the model receives them."""
    from embedhub.models.loading import load_encoder

    settings = _settings(model)
    encoder = load_encoder(settings.model, settings)
    kind = "query" if query or instruction is not None else "document"
    try:
        ids = encoder.tokenize([text], kind=kind, instruction=instruction, truncate=truncate)[0]
    except InputTooLongError as error:
        raise error.with_hint(CLI_TRUNCATE_HINT) from None
    tokens = encoder.token_strings(ids)
    if as_json:
        typer.echo(json.dumps({"model": encoder.spec.name, "ids": ids, "tokens": tokens}, ensure_ascii=False))
        return
    typer.echo(f"{len(ids)} tokens ({encoder.spec.name})")
    for token_id, token in zip(ids, tokens, strict=True):
        typer.echo(f"{token_id:>7}  {token!r}")


@app.command()
@user_errors
def serve(
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Model to serve; repeat for several.")
    ] = None,
    alias: Annotated[
        list[str] | None, typer.Option(help="ALIAS=MODEL: another request name for a served model.")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    api_key: Annotated[
        list[str] | None, typer.Option("--api-key", help="Accepted bearer key; repeat.")
    ] = None,
    allow_public: Annotated[
        bool, typer.Option("--allow-public", help="Allow a non-loopback bind without an API key.")
    ] = False,
    truncate: Annotated[
        bool | None,
        typer.Option(
            "--truncate/--no-truncate",
            help=(
                "Cut over-long inputs to the model's limit (default, counted in usage.truncated_inputs) "
                'or answer 400; a request\'s own "truncate" field wins. Env: EMBEDHUB_TRUNCATE.'
            ),
            show_default=False,
        ),
    ] = None,
    accept_token_ids: Annotated[
        bool,
        typer.Option(
            "--accept-token-ids",
            help=(
                "Accept token-id arrays as input. Only for clients that tokenise with the served "
                "model's own tokenizer: ids from tiktoken (LangChain's default) give wrong vectors. "
                "Env: EMBEDHUB_ACCEPT_TOKEN_IDS=1."
            ),
        ),
    ] = False,
    reranker: Annotated[
        str | None,
        typer.Option(
            "--reranker",
            help="Serve a reranker at /v1/rerank and for kb search: Qwen3-Reranker-0.6B|4B|8B or a "
            "folder (Qwen3-Reranker or cross-encoder). Env: EMBEDHUB_RERANKER.",
            show_default=False,
        ),
    ] = None,
    accounts: Annotated[
        str | None,
        typer.Option(
            "--accounts",
            help="auto (on for a non-loopback --host) | on | off: users sign in and own private "
            "collections. Env: EMBEDHUB_ACCOUNTS.",
            show_default=False,
        ),
    ] = None,
    backend: BackendOption = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Start the OpenAI-compatible embedding server."""
    import uvicorn

    from embedhub.models.loading import resolve
    from embedhub.server.app import create_app
    from embedhub.server.security import check_bind_policy

    updates: dict = {}
    if model:
        updates["serve_models"] = model
    if alias:
        pairs = [item.split("=", 1) for item in alias]
        if any(len(pair) != 2 or not all(pair) for pair in pairs):
            raise EmbedhubError("--alias takes ALIAS=MODEL")
        updates["aliases"] = dict(pairs)
    if host:
        updates["host"] = host
    if port is not None:
        updates["port"] = port
    if api_key:
        updates["api_keys"] = api_key
    if allow_public:
        updates["allow_public"] = True
    if truncate is not None:
        updates["truncate"] = truncate
    if accept_token_ids:
        updates["accept_token_ids"] = True
    if backend:
        updates["backend"] = backend
    if reranker:
        updates["reranker"] = reranker
    if accounts:
        updates["accounts"] = accounts
    settings = Settings(**updates) if accounts else Settings().model_copy(update=updates)
    check_bind_policy(settings)
    _announce_accounts(settings)
    _check_backend(settings)
    # Every served model must be findable before the port opens: a missing one fails here with
    # its reason, instead of a server whose /ready answers 503 forever. (Finding is cheap; the
    # weights load in the background.)
    for reference in settings.serve_models or [settings.model]:
        resolve(reference, settings)
    if settings.reranker:
        from embedhub.models.reranker import resolve_reranker

        resolve_reranker(settings.reranker, settings)
    app_instance = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app_instance,
            host=settings.host,
            port=settings.port,
            log_level=log_level,
            timeout_graceful_shutdown=5,  # running ingest jobs roll back within a batch
        )
    )
    hub = app_instance.state.hub
    watcher = threading.Thread(target=_stop_on_load_failure, args=(hub, server), daemon=True)
    watcher.start()
    typer.echo(f"embedhub: serving on http://{settings.host}:{settings.port} (models load in the background)")
    server.run()
    if hub.load_error is not None:
        raise ModelLoadError(f"model loading failed, server stopped: {hub.load_error}")


def _announce_accounts(settings: Settings) -> None:
    """Say whether users sign in, and how to create the first admin when there is none."""
    if not settings.accounts_enabled:
        return
    from embedhub.accounts.store import AccountStore

    store = AccountStore.for_home(settings.home)
    try:
        has_admin = store.has_admin()
    finally:
        store.close()
    typer.echo("embedhub: accounts are on: users sign in, collections are private to their owners", err=True)
    if not has_admin:
        typer.echo(
            "embedhub: no admin exists yet; create the first one on this machine with\n"
            "    embedhub users add NAME --role admin\n"
            f"  (with the same EMBEDHUB_HOME, {settings.home}), then sign in at the web UI",
            err=True,
        )


def _stop_on_load_failure(hub, server, poll_seconds: float = 0.2) -> None:
    """A server whose models failed to load would only ever answer 503: stop it instead, so the
    process exits non-zero and a supervisor sees the failure."""
    while not server.should_exit:
        if hub.load_error is not None:
            server.should_exit = True
            return
        if hub.ready:
            return
        time.sleep(poll_seconds)


MCP_PORT = 8001  # beside the embedding server's 8000


@app.command()
@user_errors
def mcp(
    transport: Annotated[
        str, typer.Option(help="stdio (what desktop clients launch) | http (streamable HTTP at /mcp).")
    ] = "stdio",
    host: Annotated[str, typer.Option(help="http: bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="http: port.")] = MCP_PORT,
    api_key: Annotated[
        list[str] | None,
        typer.Option("--api-key", help="http: accepted bearer key; repeat. [env: EMBEDHUB_API_KEYS]"),
    ] = None,
    allow_public: Annotated[
        bool, typer.Option("--allow-public", help="http: allow a non-loopback bind without an API key.")
    ] = False,
    reranker: Annotated[
        str | None,
        typer.Option(
            help="Reranker folder (a cross-encoder or Qwen3-Reranker) for searches with rerank, when "
            "the tools work in-process."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="http: uvicorn log level.")] = "warning",
) -> None:
    """The knowledge base as MCP tools for agents (list_collections, search, fetch_chunk, add,
    delete_document, ask). With `embedhub serve` running for the same EMBEDHUB_HOME the tools go
    through it; otherwise they work in this process."""
    from embedhub.server.security import check_bind_policy

    if transport not in ("stdio", "http"):
        raise EmbedhubError(f"unknown transport {transport!r}; choose stdio or http")
    updates: dict = {"host": host if transport == "http" else "127.0.0.1", "port": port}
    if api_key:
        updates["api_keys"] = api_key
    if allow_public:
        updates["allow_public"] = True
    settings = Settings().model_copy(update=updates)
    if transport == "stdio" or settings.accounts == "auto":
        # stdio is this machine's user; over HTTP, users' keys are checked only when asked for
        # (EMBEDHUB_ACCOUNTS=on): a public MCP bind otherwise still needs a key, as before
        settings = settings.model_copy(update={"accounts": "off"})
    check_bind_policy(settings)
    _announce_accounts(settings)
    try:
        from embedhub.mcp.server import run
    except ModuleNotFoundError as error:
        if error.name != "mcp" and not (error.name or "").startswith("mcp."):
            raise
        raise EmbedhubError("the MCP SDK is not installed: pip install 'mcp>=2.3,<3'") from None
    if transport == "http":
        typer.echo(f"embedhub: MCP over streamable HTTP at http://{host}:{port}/mcp", err=True)
    run(settings, transport, reranker=reranker, log_level=log_level)


@app.command()
@user_errors
def bench(
    models: Annotated[
        str,
        typer.Option(help="Comma list: registry names, local folders, random-qwen3-SHAPE (built offline)."),
    ] = "all-MiniLM-L6-v2,multilingual-e5-small-q4,random-qwen3-0.6B",
    backends: Annotated[
        str | None,
        typer.Option(
            help="Comma list of sentence-transformers, infinity and embedhub backends "
            "(default: those two and every embedhub backend installed here).",
            show_default=False,
        ),
    ] = None,
    lengths: Annotated[str, typer.Option(help="Tokens per text, comma list.")] = "128,512,2048",
    batch_sizes: Annotated[str, typer.Option(help="Texts per encode call, comma list.")] = "1,32",
    docs: Annotated[int, typer.Option(help="Per cell: stop after this many texts ...")] = 64,
    seconds: Annotated[
        float, typer.Option(help="... or after this many seconds (at least one batch).")
    ] = 30.0,
    infinity_python: Annotated[
        Path | None, typer.Option(help="Python of a venv with infinity-emb[server,torch] (else skipped).")
    ] = None,
    infinity_engines: Annotated[
        str, typer.Option(help="Infinity engines to measure, comma list.")
    ] = "torch,optimum",
    threads: Annotated[
        int | None, typer.Option(help="torch threads in every child (default: all cores).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds one child may run before it is stopped.")] = 3600.0,
    corpus: Annotated[Path, typer.Option(help="BEIR corpus.jsonl the texts are cut from.")] = Path(
        "../shared/data/beir-scifact/corpus.jsonl"
    ),
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the full report here as JSON.")
    ] = None,
    plot_path: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG plot here (needs matplotlib).")
    ] = None,
) -> None:
    """Encoding speed of every embedhub backend next to sentence-transformers and Infinity:
    the same texts at exact token lengths, each peer in its own process (docs/performance.md)."""
    from embedhub.bench.report import markdown, plot, portable
    from embedhub.bench.runner import BenchOptions, parse_positive_ints, run_bench, split_names

    options = BenchOptions(
        models=split_names(models),
        backends=split_names(backends) if backends is not None else None,
        lengths=parse_positive_ints(lengths, "--lengths"),
        batch_sizes=parse_positive_ints(batch_sizes, "--batch-sizes"),
        docs=docs,
        seconds=seconds,
        infinity_python=infinity_python,
        infinity_engines=split_names(infinity_engines),
        threads=threads,
        timeout=timeout,
        corpus=corpus,
        command=" ".join(["embedhub", *sys.argv[1:]]),
    )
    report = run_bench(options)
    typer.echo(markdown(report))
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(portable(report), indent=2) + "\n", encoding="utf-8")
        typer.echo(f"JSON written to {json_path}")
    if plot_path:
        typer.echo(plot(report, plot_path))


@app.command("bench-scale")
@user_errors
def bench_scale(
    sizes: Annotated[str, typer.Option(help="Chunks per collection, comma list.")] = "10000,100000,1000000",
    stores: Annotated[
        str, typer.Option(help="Stores to fill, comma list: lancedb, milvus.")
    ] = "lancedb,milvus",
    dims: Annotated[int, typer.Option(help="Vector dimensions.", min=2)] = 384,
    queries: Annotated[int, typer.Option(help="Queries for latency and recall.", min=1)] = 100,
    exact_queries: Annotated[int, typer.Option(help="Queries timed with exact search ...", min=1)] = 20,
    exact_seconds: Annotated[float, typer.Option(help="... until they took this many seconds.")] = 60.0,
    budget: Annotated[
        str,
        typer.Option(
            help="Seconds per store (900), or per store (lancedb=1200,milvus=600); a size that would not "
            "fit in what is left is skipped with its estimate, one that overruns is stopped."
        ),
    ] = "900",
    batch_rows: Annotated[int, typer.Option(help="Rows per Store.add.", min=1)] = 5000,
    work_dir: Annotated[
        Path | None, typer.Option(help="Where the collections are written (default: a temporary folder).")
    ] = None,
    remote: Annotated[
        bool, typer.Option("--remote", help="Measure the remote encoder backend instead (local endpoints).")
    ] = False,
    remote_model: Annotated[
        str, typer.Option(help="--remote: the model the endpoints serve.")
    ] = "all-MiniLM-L6-v2",
    remote_endpoints: Annotated[str, typer.Option(help="--remote: endpoint counts, comma list.")] = "1,2,4",
    remote_texts: Annotated[int, typer.Option(help="--remote: texts embedded per measurement.", min=1)] = 512,
    remote_threads: Annotated[int, typer.Option(help="--remote: torch threads per endpoint.", min=1)] = 1,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write FOLDER/scale-results.json, scale.md and scale.png (remote-*.json/md with --remote)."
        ),
    ] = None,
) -> None:
    """The knowledge base at 10k, 100k and 1M synthetic chunks per store: ingest rows/s, disk,
    index build time, hybrid/dense/exact latency, ANN recall@10, peak memory (docs/performance.md)."""
    from embedhub.bench import scale
    from embedhub.bench.report import portable
    from embedhub.bench.runner import parse_positive_ints, split_names

    command = " ".join(["embedhub", *sys.argv[1:]])
    if remote:
        options = scale.RemoteOptions(
            model=remote_model, endpoint_counts=parse_positive_ints(remote_endpoints, "--remote-endpoints"),
            texts=remote_texts, threads=remote_threads, command=command,
        )  # fmt: skip
        report = scale.run_remote(options, say=lambda line: typer.echo(line, err=True))
        text, stem = scale.remote_markdown(report), "remote"
    else:
        default_budget, budgets = scale.parse_budgets(budget)
        options = scale.ScaleOptions(
            sizes=parse_positive_ints(sizes, "--sizes"), stores=split_names(stores), dims=dims,
            queries=queries, exact_queries=exact_queries, exact_seconds=exact_seconds,
            budget=default_budget, budgets=budgets, batch_rows=batch_rows,
            work_dir=work_dir, command=command,
        )  # fmt: skip
        report = scale.run_scale(options, say=lambda line: typer.echo(line, err=True))
        text, stem = scale.markdown(report), "scale"
    typer.echo(text)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{stem}-results.json").write_text(
            json.dumps(portable(report), indent=2) + "\n", encoding="utf-8"
        )
        (out / f"{stem}.md").write_text(f"Command: `{command}`\n\n{text}\n", encoding="utf-8")
        typer.echo(f"written to {out / f'{stem}-results.json'} and {out / f'{stem}.md'}")
        if not remote:
            typer.echo(scale.plot(report, out / "scale.png"))


@models_app.command("list")
@user_errors
def models_list(as_json: JsonOption = False) -> None:
    """Registered models, whether their weights are usable offline here, and the backend that
    would run them (EMBEDHUB_BACKEND, or the per-model default under auto)."""
    from embedhub.models.backends import AUTO, auto_backend, available_backends
    from embedhub.models.cpu import detect_cpu
    from embedhub.models.loading import locate
    from embedhub.models.registry import REGISTRY

    settings = Settings()
    chosen = settings.backend.strip().lower()
    rows = []
    for spec in REGISTRY:
        found = locate(spec, settings)
        rows.append(
            {
                "name": spec.name,
                "dimensions": spec.dimensions,
                "max_tokens": spec.max_tokens,
                "mrl": f"{spec.mrl_min_dimensions}..{spec.dimensions}" if spec.supports_mrl else "no",
                "languages": spec.languages,
                "available": found is not None,
                "source": found.source if found else "not on this machine",
                "path": str(found.folder) if found else None,
                "backend": auto_backend(spec, settings) if chosen == AUTO else chosen,
            }
        )
    rerankers = _reranker_rows(settings)
    cpu = detect_cpu(settings.cpu_class)
    if as_json:
        listing = {"models": rows, "rerankers": rerankers, "backends": available_backends()}
        typer.echo(json.dumps(listing | {"cpu": cpu.as_dict()}))
        return
    from rich.console import Console
    from rich.table import Table

    why = (
        "each model's backend is its measured default for this class (EMBEDHUB_BACKEND=auto)"
        if chosen == AUTO
        else f"every model runs {chosen} (EMBEDHUB_BACKEND)"
    )
    typer.echo(f"CPU: {cpu.describe()}\n{why}")
    table = Table("name", "dims", "max tokens", "MRL", "languages", "backend", "source")
    for row in rows:
        style = None if row["available"] else "dim"
        table.add_row(
            row["name"], str(row["dimensions"]), str(row["max_tokens"]), row["mrl"], row["languages"],
            row["backend"], row["source"], style=style,
        )  # fmt: skip
    Console().print(table)
    rerank_table = Table("reranker", "max tokens", "source", title="rerankers (serve --reranker NAME)")
    for row in rerankers:
        rerank_table.add_row(
            row["name"], str(row["max_tokens"]), row["source"], style=None if row["available"] else "dim"
        )
    Console().print(rerank_table)
    typer.echo(f"backends installed here: {', '.join(available_backends())}")


def _reranker_rows(settings: Settings) -> list[dict]:
    """Registered rerankers and whether their weights are here (looked up as `--reranker` would)."""
    from embedhub.errors import ModelLoadError
    from embedhub.models.reranker import RERANKERS, resolve_reranker

    rows = []
    for spec in RERANKERS:
        try:
            _, folder = resolve_reranker(spec.name, settings)
        except ModelLoadError:
            folder = None
        rows.append(
            {
                "name": spec.name,
                "max_tokens": spec.max_tokens,
                "available": folder is not None,
                "source": str(folder) if folder else "not on this machine",
                "path": str(folder) if folder else None,
            }
        )
    return rows


@models_app.command("make-random")
@user_errors
def models_make_random(
    shape: Annotated[str, typer.Option(help="tiny | 0.6B | 4B")] = "tiny",
    out: Annotated[Path, typer.Option(help="Folder to write the model to.")] = Path("random-qwen3"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    reranker: Annotated[
        bool, typer.Option("--reranker", help="A Qwen3-Reranker (causal LM, yes/no head) instead.")
    ] = False,
) -> None:
    """Write a random-weight Qwen3 embedding model or reranker (meaningless output: tests and speed only)."""
    from embedhub.models.random_model import RANDOM_WARNING, make_random_model, make_random_reranker

    if reranker:
        folder = make_random_reranker(shape, out, seed=seed, cache_dir=Settings().cache_dir)
        typer.echo(
            f"wrote {shape} random-weight Qwen3-Reranker to {folder} (random weights: scores are meaningless)"
        )
        return
    folder = make_random_model(shape, out, seed=seed, cache_dir=Settings().cache_dir)
    typer.echo(f"wrote {shape} random-weight Qwen3 model to {folder} ({RANDOM_WARNING})")


_register_subcommands()

if __name__ == "__main__":
    app()
