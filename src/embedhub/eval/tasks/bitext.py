"""`bitext`: Tatoeba nearest-neighbour accuracy in both directions, per language.

Sentence i of language X should be most similar to English sentence i, and the other way round
(accuracy = 1 - the LASER error rate). Both sides are embedded alike, as queries with the model's
bitext instruction (plain text for models without instructions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedhub.eval.core import EvalContext, Record, TaskResult, sample_indices, timed
from embedhub.eval.datasets import DataMissingError, read_tatoeba, tatoeba_languages
from embedhub.eval.metrics import nearest_neighbour_accuracy
from embedhub.models.spec import Task


@dataclass
class BitextOptions:
    """Options of the bitext task (`--datasets` picks languages, e.g. cmn,deu)."""


def run(ctx: EvalContext, options: BitextOptions) -> TaskResult:
    result = TaskResult("bitext", ctx.model, headline="accuracy")
    with timed(result):
        folder = ctx.data if tatoeba_languages(ctx.data) else ctx.data / "tatoeba-laser"
        languages = tatoeba_languages(folder) if folder.is_dir() else []
        if ctx.datasets:
            missing = [lang for lang in ctx.datasets if lang not in languages]
            for lang in missing:
                result.notes.append(f"{lang}: no tatoeba.{lang}-eng.* files in {folder}; skipped")
            languages = [lang for lang in languages if lang in ctx.datasets]
        if not languages:
            raise DataMissingError(
                "bitext", [ctx.data / "tatoeba.LANG-eng.LANG", folder / "tatoeba.LANG-eng.LANG"]
            )
        to_eng, from_eng = [], []
        for lang in languages:
            source, english = read_tatoeba(folder, lang)
            keep = sample_indices(len(source), ctx.limit, ctx.seed)
            source, english = [source[i] for i in keep], [english[i] for i in keep]
            a = ctx.embed(source, kind="query", task=Task.BITEXT, description=f"tatoeba {lang}")
            b = ctx.embed(english, kind="query", task=Task.BITEXT, description=f"tatoeba {lang}-eng")
            forward, backward = nearest_neighbour_accuracy(a, b), nearest_neighbour_accuracy(b, a)
            to_eng.append(forward)
            from_eng.append(backward)
            result.records.append(
                Record(
                    "bitext",
                    ctx.model,
                    f"tatoeba-{lang}",
                    {"accuracy": (forward + backward) / 2, "acc_to_eng": forward, "acc_from_eng": backward},
                    info={"pairs": len(source), "language": lang},
                )
            )
        result.records.append(
            Record(
                "bitext",
                ctx.model,
                "tatoeba-average",
                {
                    "accuracy": float(np.mean([(f + b) / 2 for f, b in zip(to_eng, from_eng, strict=True)])),
                    "acc_to_eng": float(np.mean(to_eng)),
                    "acc_from_eng": float(np.mean(from_eng)),
                },
                info={"languages": len(languages)},
            )
        )
    return result
