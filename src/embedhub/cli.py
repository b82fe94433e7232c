"""The `embedhub` command: the command groups of `embedhub.commands` put together (the `models`
and `bench` commands are still written here). Flags map onto `Settings`; errors print to stderr
with exit code 2."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from embedhub.commands import accounts as accounts_commands
from embedhub.commands import encode as encode_commands
from embedhub.commands import kb as kb_commands
from embedhub.commands import serve as serve_commands
from embedhub.commands.support import JsonOption, user_errors
from embedhub.config import Settings


class _NotImportedYet(TyperGroup):
    """Holds a command group's place (and so its place in `--help`) until it is first used."""


#: command groups whose modules are imported only when the group is used: `embedhub eval` builds
#: its commands from every task definition (numpy and eight task modules, about 0.1 s), which
#: `kb list` or a `kb search` answered by a running server (0.5 s in all) should not pay
_IMPORTED_ON_USE = {"eval": "embedhub.commands.eval"}


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
app.command()(encode_commands.embed)
app.command()(encode_commands.tokenize)
app.command()(serve_commands.serve)
app.command()(serve_commands.mcp)


def _register_subcommands() -> None:
    app.add_typer(kb_commands.app, name="kb")
    app.add_typer(typer.Typer(cls=_NotImportedYet), name="eval")
    app.add_typer(accounts_commands.users_app, name="users")
    app.add_typer(accounts_commands.groups_app, name="groups")
    app.command("audit")(accounts_commands.audit)


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
    from rich.table import Column, Table

    why = (
        "each model's backend is its measured default for this class (EMBEDHUB_BACKEND=auto)"
        if chosen == AUTO
        else f"every model runs {chosen} (EMBEDHUB_BACKEND)"
    )
    typer.echo(f"CPU: {cpu.describe()}\n{why}")
    # The name is what a user types next (serve --model NAME) and the backend what runs: neither
    # is ever cut. On a terminal under 110 columns the languages column is left out (--json has it).
    console = Console()
    wide = console.width >= 110
    columns = [
        Column("name", no_wrap=True),
        "dims",
        Column("tokens", no_wrap=True),
        Column("MRL", no_wrap=True),
    ]
    columns += [Column("languages", ratio=1)] if wide else []
    table = Table(*columns, Column("backend", no_wrap=True), Column("source", ratio=1))
    for row in rows:
        cells = [row["name"], str(row["dimensions"]), str(row["max_tokens"]), row["mrl"]]
        cells += [row["languages"]] if wide else []
        table.add_row(*cells, row["backend"], row["source"], style=None if row["available"] else "dim")
    console.print(table)
    rerank_table = Table(
        Column("reranker", no_wrap=True), "max tokens", "source", title="rerankers (serve --reranker NAME)"
    )
    for row in rerankers:
        rerank_table.add_row(
            row["name"], str(row["max_tokens"]), row["source"], style=None if row["available"] else "dim"
        )
    console.print(rerank_table)
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
