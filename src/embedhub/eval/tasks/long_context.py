"""`long-context`: how much of a long document its single vector keeps.

Each document is tokenised once and cut into consecutive segments of
`min(segment_tokens, model max_tokens)` tokens (4,096 by default; special tokens included).
Per document:
- the cosine of the whole-document vector to each segment's vector, by segment position: a vector
  that represents the whole text stays close to every segment; one dominated by the beginning
  falls off with position (`position_spearman` < 0);
- the same comparison across positions without the whole vector: the cosine of each segment to
  the next (`adjacent_cos_mean`) and to the first segment (`first_segment_cos_mean`), the
  baseline of how similar the document's parts are to each other.
A document longer than the model's limit cannot be embedded whole: its whole-document vector is
the model's truncated reading (truncate=True keeps the first max_tokens tokens), and the report
says so. For a model with a 256-token limit that vector is essentially the first segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from embedhub.eval.core import Curve, EvalContext, Record, TaskResult, timed
from embedhub.eval.datasets import DataMissingError, LongDocument, read_long_docs
from embedhub.eval.metrics import spearman
from embedhub.models.spec import InputKind

COLLECTIONS = ("long-docs-en", "long-docs-zh")


@dataclass
class LongContextOptions:
    """Options of the long-context task (each field is a flag of `embedhub eval long-context`)."""

    segment_tokens: int = field(
        default=4096, metadata={"help": "Segment size (capped at the model's limit)."}
    )
    whole_max_tokens: int | None = field(
        default=None,
        metadata={"help": "Cap on the whole-document input (default: the model's limit)."},
    )


def load_documents(ctx: EvalContext) -> tuple[list[LongDocument], list[str]]:
    data: Path = ctx.data
    present = [name for name in COLLECTIONS if (data / name).is_dir()]
    notes = []
    if present:
        documents = []
        for name in present:
            documents.extend(read_long_docs(data / name, collection=name))
        notes = [
            f"{name}: not on this machine ({data / name}); skipped"
            for name in COLLECTIONS
            if name not in present
        ]
    elif data.exists():
        documents = read_long_docs(data)
    else:
        documents = []
    if ctx.datasets:
        documents = [doc for doc in documents if any(part in doc.name for part in ctx.datasets)]
    if not documents:
        raise DataMissingError("long-context", [data / name for name in COLLECTIONS] + [data / "*.txt|*.md"])
    if ctx.limit is not None:
        documents = documents[: ctx.limit]
    return documents, notes


def segment(ids: list[int], size: int) -> list[list[int]]:
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def run(ctx: EvalContext, options: LongContextOptions) -> TaskResult:
    encoder = ctx.encoder
    result = TaskResult("long-context", ctx.model, headline="cos_mean")
    special = len(encoder.prefix_ids) + len(encoder.suffix_ids)
    window = min(options.segment_tokens, encoder.max_tokens)
    room = window - special
    whole_limit = min(options.whole_max_tokens or encoder.max_tokens, encoder.max_tokens)
    dims = ctx.dimensions
    truncated_docs = []
    with timed(result):
        documents, result.notes = load_documents(ctx)
        with ctx.progress.track(f"long documents ({ctx.model})", len(documents)) as advance:
            for doc in documents:
                formatted = encoder.spec.format_text(doc.text, InputKind.DOCUMENT, None)
                content = encoder.content_ids([formatted])[0]
                segments = [encoder.frame(part) for part in segment(content, room)]
                whole_input = encoder.frame(content[: whole_limit - special], truncate=True)
                truncated = len(content) + special > whole_limit
                vectors = np.concatenate(
                    [
                        encoder.embed_framed(segments[i : i + ctx.encode_batch], dimensions=dims).vectors
                        for i in range(0, len(segments), ctx.encode_batch)
                    ]
                )
                whole = encoder.embed_framed([whole_input], dimensions=dims).vectors[0]
                cos = vectors @ whole
                adjacent = (vectors[:-1] * vectors[1:]).sum(axis=1) if len(vectors) > 1 else np.array([])
                to_first = vectors[1:] @ vectors[0] if len(vectors) > 1 else np.array([])
                metrics = {
                    "cos_mean": float(cos.mean()),
                    "cos_first": float(cos[0]),
                    "cos_last": float(cos[-1]),
                    "cos_min": float(cos.min()),
                    "position_spearman": spearman(np.arange(len(cos)), cos) if len(cos) > 2 else float("nan"),
                    "adjacent_cos_mean": float(adjacent.mean()) if len(adjacent) else float("nan"),
                    "first_segment_cos_mean": float(to_first.mean()) if len(to_first) else float("nan"),
                }
                if truncated:
                    truncated_docs.append(doc.name)
                collection = doc.name.split("/", 1)[0] if "/" in doc.name else ""
                result.records.append(
                    Record(
                        "long-context",
                        ctx.model,
                        doc.name,
                        metrics,
                        info={
                            "tokens": len(content) + special,
                            "segments": len(segments),
                            "segment_tokens": window,
                            "whole_tokens": len(whole_input),
                            "whole_truncated": truncated,
                            "cos_by_segment": [round(float(c), 4) for c in cos],
                        },
                    )
                )
                result.curves.append(
                    Curve(
                        Path(doc.name).stem[:28],
                        list(range(len(cos))),
                        [float(c) for c in cos],
                        f"segment position ({window}-token segments)",
                        "cosine(whole document, segment)",
                        panel=collection,
                    )
                )
                advance(1)
        result.notes.append(
            f"segments of {window} tokens (min of {options.segment_tokens} and the model's limit "
            f"{encoder.max_tokens})"
        )
        if truncated_docs:
            limit = (
                f"the model's {whole_limit}-token limit"
                if whole_limit == encoder.max_tokens
                else f"the whole-document cap of {whole_limit} tokens (model limit {encoder.max_tokens})"
            )
            result.notes.append(
                f"{len(truncated_docs)} of {len(documents)} documents exceed {limit}: their "
                f"whole-document vector reads only the first {whole_limit} tokens (truncate=True), "
                "so it represents the opening of the document, not all of it"
            )
    return result
