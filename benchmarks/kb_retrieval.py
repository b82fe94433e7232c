"""Knowledge-base measurements on real data, through the real ingest and search paths.

- SciFact (train qrels) and CMRC2018 (dev): nDCG@10 and Recall@100 for lexical, dense and hybrid.
  Each corpus document becomes a Markdown file ("# title" + text) ingested like any user folder;
  chunk hits are collapsed to documents (first occurrence) before scoring.
- Ingest throughput (files/s, chunks/s) for long-docs-en/zh and pdf-docx-fixtures, and the time
  of a second, unchanged run.
- Citations: for every PDF fixture chunk, whether its leading words are on the page it cites by
  an independent extractor (pypdf), and how much of the docling ground truth the chunks cover.

The knowledge base against the naive bm25s + dense + RRF script is benchmarks/naive_baseline.py.

Usage: python benchmarks/kb_retrieval.py [--data ../shared/data] [--model auto] [--out docs/retrieval.json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from embedhub.config import Settings
from embedhub.eval.core import EvalContext
from embedhub.eval.datasets import read_beir
from embedhub.eval.kb_modes import KnowledgeBaseRun
from embedhub.eval.metrics import ir_metrics
from embedhub.eval.retrieval_modes import RetrievalJob, RetrievalOptions
from embedhub.kb.collection import KnowledgeBase
from embedhub.kb.ingest import Ingestor
from embedhub.models.backends import load_encoder


def retrieval(name: str, folder: Path, split: str, encoder) -> dict:
    """The eval suite's knowledge-base modes (embedhub.eval.kb_modes), timed."""
    dataset = read_beir(folder, split, name=name)
    job = RetrievalJob(EvalContext(encoder, folder), dataset, RetrievalOptions())
    started = time.perf_counter()
    run = KnowledgeBaseRun(job)
    ingest_seconds = time.perf_counter() - started
    results: dict[str, dict] = {
        "documents": len(dataset.corpus_ids),
        "queries": len(dataset.query_ids),
        "chunks": run.chunks,
        "ingest_seconds": round(ingest_seconds, 1),
    }
    try:
        for mode in ("lexical", "dense", "hybrid"):
            started = time.perf_counter()
            rankings = run.rankings(job, mode)
            seconds = time.perf_counter() - started
            metrics = ir_metrics(dataset.qrels, rankings, ["ndcg@10", "recall@100"])
            results[mode] = {
                **{key: round(value, 4) for key, value in metrics.items()},
                "ms_per_query": round(1000 * seconds / len(dataset.query_ids), 1),
            }
            print(name, mode, results[mode], flush=True)
    finally:
        run.close()
    return results


def throughput(name: str, folders: list[Path], encoder, kb: KnowledgeBase, reference: str) -> dict:
    collection = kb.create(name, encoder, model_reference=reference)
    ingestor = Ingestor(collection, encoder)
    started = time.perf_counter()
    first = ingestor.ingest(folders)
    first_seconds = time.perf_counter() - started
    started = time.perf_counter()
    second = ingestor.ingest(folders)
    second_seconds = time.perf_counter() - started
    files = first.count("added")
    chunks = first.summary()["chunks"]
    result = {
        "files": files,
        "failed": first.count("failed"),
        "chunks": chunks,
        "tokens": first.summary()["tokens"],
        "first_seconds": round(first_seconds, 2),
        "files_per_s": round(files / first_seconds, 2),
        "chunks_per_s": round(chunks / first_seconds, 1),
        "second_seconds": round(second_seconds, 3),
        "second_skipped": second.count("skipped"),
        "second_over_first": round(second_seconds / first_seconds, 4),
    }
    print(name, result, flush=True)
    return result


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def citations(folder: Path, encoder, kb: KnowledgeBase, reference: str) -> dict:
    from pypdf import PdfReader

    collection = kb.create("citations", encoder, model_reference=reference)
    Ingestor(collection, encoder).ingest([folder], glob="*.pdf")
    per_file = {}
    for record in collection.manifest.documents():
        if record.status != "done":
            continue
        pages = [" ".join(_words(p.extract_text() or "")) for p in PdfReader(record.path).pages]
        rows = collection.store.rows_of(record.doc_id)
        on_page = sum(1 for row in rows if " ".join(_words(row.text)[:5]) in pages[row.page_start - 1])
        truth = Path(record.path.replace(".pdf", ".groundtruth.md")).read_text(encoding="utf-8")
        paragraphs = [
            p for p in truth.split("\n\n") if len(_words(p)) >= 8 and not p.lstrip().startswith(("|", "<"))
        ]
        chunk_words = " ".join(" ".join(_words(row.text)) for row in rows)
        covered = sum(1 for p in paragraphs if " ".join(_words(p)[:6]) in chunk_words)
        per_file[Path(record.path).name] = {
            "pages": record.pages,
            "chunks": len(rows),
            "chunks_on_cited_page": on_page,
            "groundtruth_paragraphs": len(paragraphs),
            "groundtruth_paragraphs_found": covered,
        }
    print("citations", per_file, flush=True)
    return per_file


def markdown(results: dict) -> str:
    lines = [
        "# Knowledge-base retrieval and ingestion",
        "",
        f"Measured {results['date']} on this project's CI-class machine (2 CPU cores, no GPU) with "
        f"`{results['model']}` ({results['dimensions']} dims), through `embedhub kb` ingest and search "
        "(chunk hits collapsed to documents). Reproduce: `python benchmarks/kb_retrieval.py`.",
        "",
        "## Retrieval",
        "",
        "| dataset | split | docs | queries | chunks | mode | nDCG@10 | Recall@100 | ms/query |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, split in (("scifact", "train"), ("cmrc2018", "dev")):
        data = results.get(name)
        if not data:
            continue
        for mode in ("lexical", "dense", "hybrid"):
            m = data[mode]
            lines.append(
                f"| {name} | {split} | {data['documents']} | {data['queries']} | {data['chunks']} | {mode} "
                f"| {m['ndcg@10']:.4f} | {m['recall@100']:.4f} | {m['ms_per_query']} |"
            )
    lines += [
        "",
        "References (orientation, not the same split or model): SciFact BM25 nDCG@10 0.665 on the test "
        "split (BEIR paper); all-MiniLM-L6-v2 about 0.65 (MTEB). CMRC2018-as-retrieval is lexically easy "
        "(a character-bigram BM25 gives 0.98), so it is a Chinese smoke test: a lexical score near zero "
        "would mean broken tokenisation.",
        "",
        "## Ingestion throughput",
        "",
        "| corpus | files | chunks | tokens | first run s | files/s | chunks/s | unchanged re-run s "
        "| re-run / first |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, t in results.get("throughput", {}).items():
        lines.append(f"| {name} | {t['files']} | {t['chunks']} | {t['tokens']} | {t['first_seconds']} | "
                     f"{t['files_per_s']} | {t['chunks_per_s']} | {t['second_seconds']} | "
                     f"{100 * t['second_over_first']:.2f}% |")  # fmt: skip
    lines += [
        "",
        "## PDF citations",
        "",
        "| file | pages | chunks | chunks whose text is on the cited page (pypdf) "
        "| ground-truth paragraphs found |",
        "|---|---|---|---|---|",
    ]
    for name, c in results.get("citations", {}).items():
        lines.append(f"| {name} | {c['pages']} | {c['chunks']} | {c['chunks_on_cited_page']}/{c['chunks']} | "
                     f"{c['groundtruth_paragraphs_found']}/{c['groundtruth_paragraphs']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--model", default="auto")
    parser.add_argument("--out", type=Path, default=Path("docs/retrieval.json"))
    parser.add_argument(
        "--markdown",
        type=Path,
        default=None,
        help="also write the tables to this file",
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], help="parts to skip: scifact cmrc2018 throughput citations"
    )
    args = parser.parse_args()
    if not args.data.exists():
        print(f"real data not found at {args.data}; nothing to measure", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="embedhub-kb-bench-"))
    settings = Settings(home=work / "home")
    encoder = load_encoder(args.model, settings)
    reference = args.model if args.model != "auto" else encoder.spec.name
    kb = KnowledgeBase(settings)
    results: dict = {
        "date": date.today().isoformat(),
        "model": encoder.spec.name,
        "dimensions": encoder.native_dims,
    }
    if "scifact" not in args.skip:
        results["scifact"] = retrieval("scifact", args.data / "beir-scifact", "train", encoder)
    if "cmrc2018" not in args.skip:
        results["cmrc2018"] = retrieval("cmrc2018", args.data / "cmrc2018-zh-retrieval", "dev", encoder)
    if "throughput" not in args.skip:
        results["throughput"] = {
            name: throughput(name.replace("-", "_"), [args.data / name], encoder, kb, reference)
            for name in ("long-docs-en", "long-docs-zh", "pdf-docx-fixtures")
        }
    if "citations" not in args.skip:
        results["citations"] = citations(args.data / "pdf-docx-fixtures" / "pdf", encoder, kb, reference)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    if args.markdown is not None:
        args.markdown.write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
