"""Time to answer one over-long input with truncation on: the whole text tokenised, then cut (how
embedhub worked before issue 27: a 30 MB input took 143 s) against a prefix tokenised only as far
as the limit needs (models/base.py `bounded_content_ids`), in one run on the same encoder.

"before" replays the old path exactly: tokenise the whole formatted text, frame and cut it, then
tokenise it whole again to tell a cut input from one exactly at the limit. "after" is
`Encoder.tokenize_with_cuts`. Both then run the same forward pass, and the ids are checked equal.
Each case runs `--repeats` times; the best time counts.

Usage::

    python benchmarks/long_inputs.py --models tiny,all-MiniLM-L6-v2,multilingual-e5-small-q4
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from embedhub.config import Settings
from embedhub.models.backends import load_encoder
from embedhub.models.spec import InputKind

ENGLISH = (
    "The quick brown fox jumps over the lazy dog; tokenizers split words, digits 12345 and punctuation. "
)
SIZES = {"30 MB": 30_000_000, "1.2 MB": 1_200_000}


def before(encoder, text: str, limit: int) -> list[int]:
    formatted = encoder.spec.format_text(text, InputKind.DOCUMENT, None)
    ids = encoder.frame(encoder.content_ids([formatted])[0], 0, truncate=True, limit=limit)
    encoder.count_tokens([text])  # the old service counted a cut input's tokens again
    return ids


def after(encoder, text: str, limit: int) -> list[int]:
    return encoder.tokenize_with_cuts([text], truncate=True, limit=limit)[0][0]


def best_time(repeats: int, function, *arguments):
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function(*arguments)
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="tiny,all-MiniLM-L6-v2,multilingual-e5-small-q4")
    parser.add_argument("--limit", type=int, default=512, help="tokens kept (e5's own limit)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sizes", default=",".join(SIZES), help="which of: " + ", ".join(SIZES))
    parser.add_argument("--out", type=Path, help="write the rows as JSON here too")
    arguments = parser.parse_args()
    settings = Settings(threads=2, backend="torch")
    rows = []
    for name in arguments.models.split(","):
        if name == "tiny":  # the tests' random Qwen3 with the real Qwen vocabulary
            from embedhub.models.random_model import make_random_model

            folder = make_random_model(
                "tiny", Path(tempfile.mkdtemp()) / "tiny", cache_dir=settings.cache_dir
            )
            encoder = load_encoder(str(folder), settings)
        else:
            encoder = load_encoder(name, settings)
        limit = min(arguments.limit, encoder.max_tokens)
        for content, unit in (("english", ENGLISH), ("no-spaces", "x")):
            for size_name in arguments.sizes.split(","):
                size = SIZES[size_name]
                text = (unit * (size // len(unit) + 1))[:size]
                old_seconds, old_ids = best_time(arguments.repeats, before, encoder, text, limit)
                new_seconds, new_ids = best_time(arguments.repeats, after, encoder, text, limit)
                forward, _ = best_time(arguments.repeats, encoder.embed_framed, [new_ids])
                row = {
                    "model": encoder.spec.name,
                    "input": f"{size_name} {content}",
                    "before_s": round(old_seconds + forward, 3),
                    "after_s": round(new_seconds + forward, 3),
                    "speedup": round((old_seconds + forward) / (new_seconds + forward), 1),
                    "forward_s": round(forward, 3),
                    "same_ids": old_ids == new_ids,
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    if arguments.out:
        arguments.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
