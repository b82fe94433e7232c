"""A tiny synthetic data root in the same layouts as ../shared/data, built at test time.

The data is designed so that even a random-weight model gives known answers: related items are
exact duplicates (cosine 1), so identical pairs score highest, translations are the sentence
itself, and BM25 finds the document sharing a query's rare words.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

WORDS = [
    "apple",
    "banana",
    "cherry",
    "dolphin",
    "eagle",
    "falcon",
    "guitar",
    "harbor",
    "island",
    "jungle",
    "kettle",
    "lantern",
    "meadow",
    "nectar",
    "orchid",
    "pepper",
    "quartz",
    "river",
    "saddle",
    "tiger",
    "umbrella",
    "violin",
    "walnut",
    "yacht",
    "zebra",
    "anchor",
    "bridge",
    "candle",
    "desert",
    "ember",
    "forest",
    "glacier",
]


def sentence(i: int, n: int = 5) -> str:
    return " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(n)) + f" number {100 + i}"


def _jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def build_beir(folder: Path, splits=("test",)) -> None:
    docs = [{"_id": f"d{i}", "title": f"Title {WORDS[i]}", "text": sentence(i, 8)} for i in range(12)]
    _jsonl(folder / "corpus.jsonl", docs)
    # query i repeats document i's rare title word and its number (3 digits: the analyzer drops single
    # characters): BM25 ranks document i first
    queries = [{"_id": f"q{i}", "text": f"{WORDS[i]} number {100 + i}"} for i in range(6)]
    _jsonl(folder / "queries.jsonl", queries)
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    for split in splits:
        lines = ["query-id\tcorpus-id\tscore"] + [f"q{i}\td{i}\t1" for i in range(6)]
        (folder / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")


def build_root(root: Path) -> Path:
    build_beir(root / "beir-scifact", splits=("train", "test"))
    # STS: score 5 = the identical sentence, lower scores = unrelated sentences
    sts_rows = [(sentence(i), sentence(i), 5.0) for i in range(6)]
    sts_rows += [(sentence(i), sentence(i + 20), float(i % 3)) for i in range(6)]
    path = root / "stsb-multi-mt-en-zh" / "stsb-en-dev.csv"
    path.parent.mkdir(parents=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(sts_rows)
    # pairs: label 1 = identical, label 0 = different sentences
    pair_lines = [f"{sentence(i)}\t{sentence(i)}\t1" for i in range(20)]
    pair_lines += [f"{sentence(i)}\t{sentence(i + 40)}\t0" for i in range(20)]
    path = root / "zh-semantic-matching" / "LCQMC" / "dev.txt"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(pair_lines) + "\n", encoding="utf-8")
    trec = root / "en-sts-sick-sts16" / "trecqa-wang" / "dev.csv"
    trec.parent.mkdir(parents=True)
    with trec.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["qtext", "label", "atext"])
        for q in range(3):
            for a in range(3):
                writer.writerow([f"question {q} {WORDS[q]}", int(a == q), sentence(q * 3 + a)])
    # classification: AG News layout and a FewCLUE folder
    agnews = root / "ag-news-test"
    agnews.mkdir()
    (agnews / "classes.txt").write_text("World\nSports\n")
    with (agnews / "test.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([(1 + i % 2, f"headline {i}", sentence(i)) for i in range(24)])
    tnews = root / "fewclue-zh-classification" / "tnews"
    _jsonl(tnews / "train_few_all.json", [{"label": 100 + i % 3, "sentence": sentence(i)} for i in range(12)])
    _jsonl(tnews / "dev_few_all.json", [{"label": 100 + i % 3, "sentence": sentence(i)} for i in range(12)])
    # bitext: the "translation" is the sentence itself
    tatoeba = root / "tatoeba-laser"
    tatoeba.mkdir()
    lines = "\n".join(sentence(i) for i in range(10)) + "\n"
    (tatoeba / "tatoeba.deu-eng.deu").write_text(lines)
    (tatoeba / "tatoeba.deu-eng.eng").write_text(lines)
    # code search
    cosqa = root / "cosqa-code-search"
    cosqa.mkdir()
    functions = [f"def {WORDS[i]}_{WORDS[i + 1]}(x):\n    return x + {i}" for i in range(8)]
    (cosqa / "code_idx_map.txt").write_text(json.dumps({code: i for i, code in enumerate(functions)}))
    queries = [
        {
            "idx": f"cosqa-{i}",
            "doc": f"python {WORDS[i]} {WORDS[i + 1]}",
            "code": functions[i],
            "retrieval_idx": str(i),
        }
        for i in range(5)
    ]
    (cosqa / "cosqa-retrieval-dev-500.json").write_text(json.dumps(queries))
    qa = [
        {"idx": f"qa-{i}", "doc": f"python {WORDS[i]}", "code": functions[i], "label": str(i % 2)}
        for i in range(6)
    ]
    (cosqa / "cosqa-dev.json").write_text(json.dumps(qa))
    # long documents
    long_docs = root / "long-docs-en"
    long_docs.mkdir()
    (long_docs / "SOURCE.txt").write_text("provenance, not a document")
    (long_docs / "story.txt").write_text(" ".join(sentence(i, 8) for i in range(30)))
    return root


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    return build_root(tmp_path_factory.mktemp("eval-data"))
