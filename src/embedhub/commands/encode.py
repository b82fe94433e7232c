"""`embedhub embed` and `embedhub tokenize`: a model loaded in this process, texts in, vectors or
token ids out."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from embedhub.commands.support import (
    BackendOption,
    JsonOption,
    ModelOption,
    check_backend,
    settings_for,
    user_errors,
)
from embedhub.errors import EmbedhubError, InputTooLongError

CLI_TRUNCATE_HINT = "shorten or split it, or pass --truncate to cut it to the limit"


def _read_texts(texts: list[str] | None) -> list[str]:
    if texts:
        return texts
    lines = [line.rstrip("\n") for line in sys.stdin]
    return [line for line in lines if line.strip()]


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
    from embedhub.models.backends import load_encoder

    if query and document:
        raise EmbedhubError("choose one of --query and --document")
    if instruction is not None and not query:
        query = True  # an instruction only makes sense on a query
    values = _read_texts(texts)
    if not values:
        raise EmbedhubError("no text given: pass TEXT arguments or lines on stdin")
    settings = settings_for(model, backend)
    check_backend(settings)
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
    from embedhub.models.backends import load_encoder

    settings = settings_for(model)
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
