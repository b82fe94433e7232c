"""`mrl`: quality against vector size (Matryoshka), with the index size each size costs.

Vectors are computed once at the native size; each size k is first-k-then-normalise, exactly
what the encoder returns for `dimensions=k`. Sizes: 32, 64, 128, ... below the
native size, then the native size. A model without Matryoshka training (e.g. all-MiniLM-L6-v2)
is measured the same way, post hoc, and the report says so: its curve shows what cutting an
untrained vector costs.

`metric: retrieval` (default) scores nDCG@10 of dense retrieval on `scifact` (or the BEIR data
given); `metric: sts` scores Spearman on `stsb-en-dev` (or the pair file given). The index size
is corpus documents (retrieval) or distinct sentences (sts) x k x 4 bytes (float32).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from embedhub.errors import EmbedhubError
from embedhub.eval.core import Curve, EvalContext, Record, TaskResult, timed, truncate_normalise
from embedhub.eval.metrics import ir_metrics, paired_cosine, spearman
from embedhub.eval.retrieval_modes import RetrievalJob, RetrievalOptions
from embedhub.eval.tasks.pairs import STS_REFS, load_pair_sets
from embedhub.eval.tasks.retrieval import load_retrieval_sets
from embedhub.models.spec import Task, matryoshka_sizes

MIB = 1024 * 1024


@dataclass
class MrlOptions:
    """Options of the MRL task (each field is a flag of `embedhub eval mrl`)."""

    metric: str = field(
        default="retrieval", metadata={"help": "retrieval (nDCG@10, SciFact) or sts (Spearman, STS-B)."}
    )
    dims: tuple[int, ...] = field(
        default=(), metadata={"help": "Comma-separated sizes (default: 32, 64, .., native)."}
    )


def mrl_dims(native: int, minimum: int = 32, requested: tuple[int, ...] = ()) -> list[int]:
    """32, 64, 128, ... below native, then native (or the requested sizes within range)."""
    if requested:
        return sorted({d for d in requested if minimum <= d <= native})
    return matryoshka_sizes(native, minimum)


def run(ctx: EvalContext, options: MrlOptions) -> TaskResult:
    if options.metric not in {"retrieval", "sts"}:
        raise EmbedhubError(f"unknown MRL metric {options.metric!r}; choose from: retrieval, sts")
    spec = ctx.encoder.spec
    minimum = spec.mrl_min_dimensions or 32
    dims = mrl_dims(spec.dimensions, min(minimum, spec.dimensions), options.dims)
    if not dims:
        raise EmbedhubError(f"no requested size lies in {minimum}..{spec.dimensions} for {spec.name}")
    key = "ndcg@10" if options.metric == "retrieval" else "spearman"
    result = TaskResult("mrl", ctx.model, headline=key)
    if not spec.supports_mrl:
        result.notes.append(
            f"{spec.name} is not Matryoshka-trained: sizes below {spec.dimensions} are post-hoc "
            "truncations of its vectors (first k components, renormalised)"
        )
    with timed(result):
        if options.metric == "retrieval":
            sets, notes = load_retrieval_sets(ctx, default=("scifact",))
            for dataset in sets:
                job = RetrievalJob(ctx, dataset, RetrievalOptions(depth=100))
                queries = ctx.embed(dataset.query_texts, kind="query", dimensions=None, description="queries")
                documents = ctx.embed(
                    dataset.corpus_texts, kind="document", dimensions=None, description="corpus"
                )
                values = []
                for size in dims:
                    rankings = job.dense_rankings(
                        truncate_normalise(queries, size), truncate_normalise(documents, size)
                    )
                    score = ir_metrics(dataset.qrels, rankings, [key, "recall@100"])
                    index_bytes = len(dataset.corpus_ids) * size * 4
                    values.append(score[key])
                    result.records.append(
                        Record(
                            "mrl",
                            ctx.model,
                            dataset.name,
                            {**score, "index_mib": index_bytes / MIB},
                            split=dataset.split,
                            mode=f"dims={size}",
                            info={
                                "dimensions": size,
                                "index_bytes": index_bytes,
                                "vectors": len(dataset.corpus_ids),
                            },
                        )
                    )
                result.curves.append(
                    Curve(dataset.name, dims, values, "dimensions", key, panel=dataset.name, xlog=True)
                )
        else:
            if not ctx.data.is_file():
                ctx = _with_datasets(ctx, ctx.datasets or ("stsb-en-dev",))
            sets, notes = load_pair_sets(ctx, "mrl", STS_REFS)
            for pairs in sets:
                texts = list(dict.fromkeys(pairs.first + pairs.second))
                vectors = ctx.embed(
                    texts, kind="query", task=Task.STS, dimensions=None, description=pairs.name
                )
                row = {text: i for i, text in enumerate(texts)}
                first = [row[t] for t in pairs.first]
                second = [row[t] for t in pairs.second]
                values = []
                for size in dims:
                    cut = truncate_normalise(vectors, size)
                    score = spearman(paired_cosine(cut[first], cut[second]), pairs.labels)
                    index_bytes = len(texts) * size * 4
                    values.append(score)
                    result.records.append(
                        Record(
                            "mrl",
                            ctx.model,
                            pairs.name,
                            {"spearman": score, "index_mib": index_bytes / MIB},
                            split=pairs.split,
                            mode=f"dims={size}",
                            info={"dimensions": size, "index_bytes": index_bytes, "vectors": len(texts)},
                        )
                    )
                result.curves.append(
                    Curve(pairs.name, dims, values, "dimensions", key, panel=pairs.name, xlog=True)
                )
        result.notes.extend(notes)
    return result


def _with_datasets(ctx: EvalContext, names: tuple[str, ...]) -> EvalContext:
    return replace(ctx, datasets=tuple(names))
