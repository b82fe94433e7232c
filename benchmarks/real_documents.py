"""Retrieval over real documents: the evidence a user gets back from DOCX files with headings and
tables, PDFs with pages, Markdown notes and long Chinese and English texts.

SciFact and CMRC2018 (benchmarks/kb_retrieval.py) are clean paragraphs without headings, tables or
pages; this benchmark asks questions whose answers sit in structured documents and judges the
chunks that come back, not only whether the right document ranks first.

- Questions: benchmarks/real_documents/questions.jsonl, one JSON object a line: `id`, `language`
  (en / zh), `file` (relative to the data folder, ../shared/data), `kind` (prose / table / list:
  where the answer sits), `question` (worded as a user would ask it: paraphrased or as keywords)
  and `passage`, a short verbatim quote of the document's extracted text that answers it (5-25
  words, or 10-40 Chinese characters; the data's licences allow short quotes only).
  tests/kb/test_real_documents_questions.py checks every passage is still in its document.
- Corpus: every file a question names, plus the other PDF and DOCX fixtures as distractors,
  ingested through the real ingest path (embedhub.kb.ingest.Ingestor) into a fresh collection
  in a temporary EMBEDHUB_HOME, with the model `--model` names (auto: the offline default).
- Each question is asked once with hybrid search, k=5.

What counts (all text compared after whitespace normalisation: runs of whitespace become one space):
- A chunk *bears the answer* when it comes from the question's file and its text contains the
  passage, or contains a piece of the passage covering at least 80% of the passage's characters
  (the longest common substring: a passage split across two chunks counts for the chunk that
  holds most of it). Reported: answer-bearing chunk at rank 1 (top 1), within the 5 (top 5), MRR@5.
- A top-5 result is *evidence that is empty or a fragment* when its body (its text without the
  lines that are its own headings) is shorter than 20 characters (empty and heading-only chunks
  included), or when it holds part of a table but not that table's header row (the first row
  of a table block the loader extracted; PDF tables are plain page text and cannot be told apart).
- A *mid-word start*: the snippet shown for a result (the search's highlight) starts inside a word
  of the chunk text: between two letters or digits, or for Chinese inside a jieba word. The
  same is counted for the chunk's own start in the document text.
- Questions whose passage is not in the text the loader extracted (it is in the fixture's
  ground truth only: content the loader drops) are reported as `answer not extracted`; they count
  as misses.

Optional `--ocr`: the question set's PDFs are rendered to images (pypdfium2, 200 dpi) as PNG pages
and image-only PDFs and ingested instead of the text PDFs, if embedhub reads either (a loader for
.png, or text from an image-only PDF); reported the same way for the PDF questions, plus the OCR
character accuracy of each page against the PDF's text layer (difflib matching characters over
the text layer's characters, whitespace runs as one space, and again with whitespace removed).
Otherwise it reports "OCR not available".

Usage: python benchmarks/real_documents.py [--data ../shared/data] [--model auto] [--ocr]
           [--out docs/real-documents.json] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import difflib
import html
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUESTIONS = HERE / "real_documents" / "questions.jsonl"
#: fixtures ingested beside the question files so that retrieval has to choose among documents
DISTRACTOR_FOLDERS = ("pdf-docx-fixtures/pdf", "pdf-docx-fixtures/docx")
DISTRACTOR_SUFFIXES = (".pdf", ".docx")
K = 5
COVERAGE = 0.8
MIN_BODY_CHARS = 20
OCR_DPI = 200
_HAN = re.compile(r"[\u3400-\u9fff]")
_MARK = re.compile(r"</?mark>")


@dataclass(frozen=True)
class Question:
    id: str
    language: str
    file: str
    kind: str
    question: str
    passage: str


def normalise(text: str) -> str:
    """Runs of whitespace become one space (PDF line breaks, Markdown table padding)."""
    return " ".join(text.split())


def passage_size(passage: str, language: str) -> int:
    """Words for English, Han characters for Chinese: the unit the length limits are in."""
    return len(_HAN.findall(passage)) if language == "zh" else len(passage.split())


def read_questions(path: Path = QUESTIONS) -> list[Question]:
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            questions.append(Question(**json.loads(line)))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}:{number}: not a question object ({error})") from error
    return questions


def groundtruth_of(document: Path) -> Path:
    return document.with_name(document.stem + ".groundtruth.md")


def extracted_text(document: Path) -> str:
    """The text embedhub's loader extracts, as ingestion sees it."""
    from embedhub.kb.loaders import load_file

    return load_file(document).text


def bears_answer(chunk_text: str, passage: str) -> bool:
    chunk, wanted = normalise(chunk_text), normalise(passage)
    if wanted in chunk:
        return True
    match = difflib.SequenceMatcher(None, wanted, chunk, autojunk=False).find_longest_match(
        0, len(wanted), 0, len(chunk)
    )
    return match.size >= COVERAGE * len(wanted)


def splits_word(text: str, offset: int) -> bool:
    """Whether position `offset` of `text` falls inside a word (Latin letters/digits on both sides,
    or inside a jieba word between two Han characters)."""
    if offset <= 0 or offset >= len(text):
        return False
    before, after = text[offset - 1], text[offset]
    if _HAN.match(before) and _HAN.match(after):
        import jieba

        start = max(0, offset - 30)
        window = text[start : offset + 30]
        boundaries = {edge for _, begin, end in jieba.tokenize(window) for edge in (begin, end)}
        return offset - start not in boundaries
    return before.isalnum() and after.isalnum()


def snippet_offset(chunk_text: str, snippet: str) -> int:
    """Where the snippet the search returned starts in the chunk text (0 unless it starts with …)."""
    plain = html.unescape(_MARK.sub("", snippet))
    if not plain.startswith("…"):
        return 0
    first = plain[1:].split("…")[0].strip()  # the first shown piece (sentence snippets leave out several)
    found = chunk_text.find(first)  # the whole piece: a repeated opening (lorem ipsum) is not enough
    if found >= 0:
        return found
    # whitespace runs are shown as one space: find it in the collapsed text, map back to the chunk's
    collapsed, origin = [], []
    for position, character in enumerate(chunk_text):
        if character.isspace():
            if collapsed and collapsed[-1] == " ":
                continue
            character = " "
        collapsed.append(character)
        origin.append(position)
    found = "".join(collapsed).find(" ".join(first.split()))
    return origin[found] if found >= 0 else 0


@dataclass
class Tables:
    """The table blocks of one extracted document: span and header row."""

    spans: list[tuple[int, int, str]] = field(default_factory=list)

    def header_missing(self, chunk_text: str, start: int, end: int) -> bool:
        text = normalise(chunk_text)
        return any(
            begin < end and start < finish and normalise(header) not in text
            for begin, finish, header in self.spans
        )


@dataclass
class Document:
    text: str
    tables: Tables


def load_document(path: Path) -> Document:
    from embedhub.kb.loaders import load_file

    extracted = load_file(path)
    tables = Tables()
    for block, (begin, finish) in zip(extracted.blocks, extracted.spans, strict=True):
        if block.kind == "table":
            header = next((line for line in block.text.splitlines() if line.strip()), "")
            tables.spans.append((begin, finish, header))
    return Document(extracted.text, tables)


def body_of(text: str, heading_path: list[str]) -> str:
    headings = {normalise(h.lstrip("#")) for h in heading_path}
    lines = [line for line in text.splitlines() if normalise(line.lstrip("#")) not in headings]
    return normalise("\n".join(lines))


def judge(
    question: Question, results, documents: dict[str, Document], files: set[str], extracted: bool
) -> dict:
    """One question's outcome from its top-k results."""
    answer_rank = None
    evidence = []
    for result in results:
        same_file = result.path in files
        bearing = extracted and same_file and bears_answer(result.text, question.passage)
        if bearing and answer_rank is None:
            answer_rank = result.rank
        document = documents.get(result.path)
        body = body_of(result.text, result.heading_path)
        table_piece = document is not None and document.tables.header_missing(
            result.text, result.char_start, result.char_end
        )
        snippet_start = snippet_offset(result.text, result.snippet)
        if snippet_start == 0 and document is not None:
            snippet_mid_word = splits_word(document.text, result.char_start)
        else:
            snippet_mid_word = splits_word(result.text, snippet_start)
        chunk_mid_word = document is not None and splits_word(document.text, result.char_start)
        evidence.append(
            {
                "rank": result.rank,
                "path": result.path,
                "bears_answer": bearing,
                "body_chars": len(body),
                "empty": not result.text.strip(),
                "heading_only": bool(result.text.strip()) and not body,
                "short": len(body) < MIN_BODY_CHARS,
                "table_without_header": table_piece,
                "fragment": len(body) < MIN_BODY_CHARS or table_piece,
                "snippet_mid_word": snippet_mid_word,
                "snippet_start": result.text[snippet_start : snippet_start + 30],
                "chunk_mid_word": chunk_mid_word,
            }
        )
    return {
        "id": question.id,
        "language": question.language,
        "kind": question.kind,
        "file": question.file,
        "answer_extracted": extracted,
        "answer_rank": answer_rank,
        "evidence": evidence,
    }


def summarise(outcomes: list[dict]) -> dict:
    evidence = [item for outcome in outcomes for item in outcome["evidence"]]

    def share(key: str) -> float:
        return round(sum(1 for item in evidence if item[key]) / len(evidence), 4) if evidence else 0.0

    ranks = [outcome["answer_rank"] for outcome in outcomes]
    count = len(outcomes)
    return {
        "questions": count,
        "answer_not_extracted": sum(1 for outcome in outcomes if not outcome["answer_extracted"]),
        "answer_in_no_chunk": sum(1 for outcome in outcomes if not outcome["answer_in_a_chunk"]),
        "top1": round(sum(1 for rank in ranks if rank == 1) / count, 4) if count else 0.0,
        "top5": round(sum(1 for rank in ranks if rank is not None) / count, 4) if count else 0.0,
        "mrr5": round(sum(1 / rank for rank in ranks if rank) / count, 4) if count else 0.0,
        "evidence": len(evidence),
        "fragment_share": share("fragment"),
        "heading_only_share": share("heading_only"),
        "short_share": share("short"),
        "table_without_header_share": share("table_without_header"),
        "snippet_mid_word_share": share("snippet_mid_word"),
        "chunk_mid_word_share": share("chunk_mid_word"),
    }


def breakdown(outcomes: list[dict]) -> dict:
    groups: dict[str, list[dict]] = defaultdict(list)
    for outcome in outcomes:
        groups["all"].append(outcome)
        groups[f"language:{outcome['language']}"].append(outcome)
        groups[f"kind:{outcome['kind']}"].append(outcome)
        groups[f"format:{Path(outcome['file']).suffix.lstrip('.')}"].append(outcome)
    return {name: summarise(groups[name]) for name in sorted(groups, key=lambda n: (n != "all", n))}


def answers_in_chunks(collection, questions, files_of) -> dict[str, bool]:
    """Whether any stored chunk of the question's file bears its answer: separates "chunking cut
    the answer apart" from "search did not find the chunk"."""
    texts: dict[str, list[str]] = {}
    for record in collection.manifest.documents():
        if record.status == "done":
            texts[record.path] = [row.text for row in collection.store.rows_of(record.doc_id)]
    return {
        q.id: any(bears_answer(text, q.passage) for path in files_of[q.file] for text in texts.get(path, []))
        for q in questions
    }


def run_questions(collection, encoder, questions, documents, files_of, extracted) -> list[dict]:
    from embedhub.kb.search import Searcher

    searcher = Searcher(collection, encoder)
    chunked = answers_in_chunks(collection, questions, files_of)
    outcomes = []
    for question in questions:
        results = searcher.search(question.question, k=K, mode="hybrid")
        outcome = judge(question, results, documents, files_of[question.file], extracted[question.id])
        outcome["answer_in_a_chunk"] = chunked[question.id]
        outcomes.append(outcome)
    return outcomes


def ingest(kb, name: str, encoder, reference: str, paths: list[Path]):
    from embedhub.kb.ingest import Ingestor

    collection = kb.create(name, encoder, model_reference=reference)
    started = time.perf_counter()
    report = Ingestor(collection, encoder).ingest(paths)
    seconds = time.perf_counter() - started
    summary = report.summary()
    failures = {Path(failure["path"]).name: failure["error"] for failure in summary["failures"]}
    stats = {
        "files": report.count("added"),
        "failed": failures,
        "chunks": summary["chunks"],
        "ingest_seconds": round(seconds, 1),
    }
    print(name, stats, flush=True)
    return collection, stats


def corpus_files(data: Path, questions: list[Question]) -> list[Path]:
    files = {data / question.file for question in questions}
    for folder in DISTRACTOR_FOLDERS:
        files.update(p for p in (data / folder).iterdir() if p.suffix in DISTRACTOR_SUFFIXES)
    return sorted(files)


def answer_extracted(
    data: Path, questions: list[Question], documents: dict[str, Document]
) -> dict[str, bool]:
    """Whether each passage is in the text the loader extracted (else only in the ground truth)."""
    texts = {path: normalise(document.text) for path, document in documents.items()}
    return {q.id: normalise(q.passage) in texts[str(data / q.file)] for q in questions}


# --- OCR -------------------------------------------------------------------------------------


def render_pages(pdf: Path, folder: Path) -> tuple[list[Path], Path]:
    """Each page as a PNG, and the whole document as an image-only PDF (a scan has no text layer)."""
    import pypdfium2

    document = pypdfium2.PdfDocument(str(pdf))
    images, pngs = [], []
    for index in range(len(document)):
        image = document[index].render(scale=OCR_DPI / 72).to_pil().convert("RGB")
        png = folder / f"{pdf.stem}-scan-page{index + 1}.png"
        image.save(png)
        images.append(image)
        pngs.append(png)
    scanned = folder / f"{pdf.stem}-scan.pdf"
    images[0].save(scanned, save_all=True, append_images=images[1:], resolution=OCR_DPI)
    return pngs, scanned


def ocr_support(folder: Path, sample_pdf: Path) -> list[str]:
    """Which scanned forms embedhub reads: 'png' (an image loader), 'pdf' (OCR of image-only PDF
    pages). Found by trying, so it follows whatever the loaders do."""
    from embedhub.kb.loaders import LoaderError, load_file, loader_for

    folder.mkdir(parents=True, exist_ok=True)
    pngs, scanned = render_pages(sample_pdf, folder)
    forms = []
    for form, path in (("png", pngs[0]), ("pdf", scanned)):
        if form == "png" and loader_for(path) is None:
            continue
        try:
            if normalise(load_file(path).text):
                forms.append(form)
        except LoaderError:
            pass
    return forms


def character_accuracy(recognised: str, reference: str, *, spaces: bool = True) -> float:
    """Matching characters over the reference's, whitespace runs as one space (`spaces`: the word
    spaces count, since search needs them) or removed (the figure this benchmark first reported,
    which hid readings that had lost their word spaces)."""
    joiner = " " if spaces else ""
    wanted, got = joiner.join(reference.split()), joiner.join(recognised.split())
    if not wanted:
        return 0.0
    matcher = difflib.SequenceMatcher(None, wanted, got, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / len(wanted)


def ocr_part(args, kb, encoder, reference, questions, work: Path) -> dict:
    from embedhub.kb.loaders import load_file

    pdf_questions = [q for q in questions if q.file.endswith(".pdf")]
    pdfs = sorted({args.data / q.file for q in pdf_questions})
    scans = work / "scans"
    forms = ocr_support(scans / "probe", pdfs[0])
    if not forms:
        print("OCR not available: embedhub reads neither PNG pages nor image-only PDFs", flush=True)
        return {
            "available": False,
            "reason": "OCR not available: no loader reads PNG pages or image-only PDFs",
        }
    results: dict = {"available": True, "forms": forms}
    others = [p for p in corpus_files(args.data, questions) if p.suffix != ".pdf"]
    for form in forms:
        folder = scans / form
        folder.mkdir(parents=True, exist_ok=True)
        files_of: dict[str, set[str]] = defaultdict(set)
        accuracy, without_spaces = {}, {}
        documents: dict[str, Document] = {}
        scanned_paths = []
        for pdf in pdfs:
            pngs, scanned = render_pages(pdf, folder)
            variants = pngs if form == "png" else [scanned]
            scanned_paths += variants
            relative = pdf.relative_to(args.data).as_posix()
            files_of[relative] = {str(path) for path in variants}
            reference_pages = [
                " ".join(block.text for block in load_file(pdf).blocks if block.page == page)
                for page in range(1, len(pngs) + 1)
            ]
            if form == "png":
                recognised = [load_file(png).text for png in pngs]
            else:
                blocks = load_file(scanned).blocks
                recognised = [
                    " ".join(block.text for block in blocks if block.page == page)
                    for page in range(1, len(pngs) + 1)
                ]
            pairs = list(zip(recognised, reference_pages, strict=True))
            accuracy[pdf.name] = [round(character_accuracy(got, wanted), 4) for got, wanted in pairs]
            without_spaces[pdf.name] = [
                round(character_accuracy(got, wanted, spaces=False), 4) for got, wanted in pairs
            ]
            for path in variants:
                documents[str(path)] = load_document(path)
        collection, stats = ingest(kb, f"ocr_{form}", encoder, reference, others + scanned_paths)
        try:
            extracted = {q.id: True for q in pdf_questions}  # judged against the scan's chunks
            outcomes = run_questions(collection, encoder, pdf_questions, documents, files_of, extracted)
        finally:
            collection.close()
        for outcome in outcomes:  # scans live in a temporary folder: their names say enough
            for item in outcome["evidence"]:
                item["path"] = Path(item["path"]).name
        results[form] = {
            "ingest": stats,
            "character_accuracy": accuracy,
            "character_accuracy_without_spaces": without_spaces,
            "summary": breakdown(outcomes),
            "questions": outcomes,
        }
    return results


# --- report ----------------------------------------------------------------------------------


def commit_of(folder: Path) -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no", "--", "src"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


ROWS = (
    ("questions", "questions", "{}"),
    ("answer not in the extracted text", "answer_not_extracted", "{}"),
    ("answer in no stored chunk (not extracted, or cut apart)", "answer_in_no_chunk", "{}"),
    ("answer-bearing chunk at rank 1", "top1", "{:.1%}"),
    ("answer-bearing chunk in top 5", "top5", "{:.1%}"),
    ("MRR@5", "mrr5", "{:.3f}"),
    ("top-5 evidence empty or a fragment", "fragment_share", "{:.1%}"),
    ("- heading only", "heading_only_share", "{:.1%}"),
    ("- body under 20 characters (heading-only included)", "short_share", "{:.1%}"),
    ("- table piece without its header row", "table_without_header_share", "{:.1%}"),
    ("snippets starting mid-word", "snippet_mid_word_share", "{:.1%}"),
    ("chunks starting mid-word", "chunk_mid_word_share", "{:.1%}"),
)


def table(summary: dict) -> list[str]:
    groups = list(summary)
    lines = ["| measure | " + " | ".join(groups) + " |", "|---" * (len(groups) + 1) + "|"]
    for label, key, form in ROWS:
        lines.append(f"| {label} | " + " | ".join(form.format(summary[g][key]) for g in groups) + " |")
    return lines


def markdown(results: dict) -> str:
    lines = [
        f"Real documents: {results['question_count']} questions over {results['ingest']['files']} files "
        f"({results['ingest']['chunks']} chunks), hybrid search k={K}, model `{results['model']}` "
        f"({results.get('backend', 'unknown')}), "
        f"commit {results['commit']}, CPU {results['cpu']}, {results['date']}.",
        "",
        *table(results["summary"]),
    ]
    ocr = results.get("ocr")
    if ocr is not None:
        lines += [""]
        if not ocr["available"]:
            lines.append(ocr["reason"])
        for form in ocr.get("forms", []):
            part = ocr[form]
            lines += ["", f"OCR ({form} scans at {OCR_DPI} dpi instead of the text PDFs):", ""]
            lines += table(part["summary"])
            lines += [
                "",
                "| file | OCR character accuracy per page | the same, spaces removed |",
                "|---|---|---|",
            ]
            for name, pages in part["character_accuracy"].items():
                bare = part["character_accuracy_without_spaces"][name]
                lines.append(
                    f"| {name} | {', '.join(f'{value:.1%}' for value in pages)} "
                    f"| {', '.join(f'{value:.1%}' for value in bare)} |"
                )
    misses = [o["id"] for o in results["questions"] if o["answer_rank"] is None]
    lines += ["", "Questions without an answer-bearing chunk in the top 5: " + (", ".join(misses) or "none")]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--model", default="auto")
    parser.add_argument("--ocr", action="store_true", help="also ingest scanned (rendered) PDF pages")
    parser.add_argument("--out", type=Path, default=Path("docs/real-documents.json"))
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables to this file")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"real data not found at {args.data}; nothing to measure", file=sys.stderr)
        return 1
    args.data = args.data.resolve()
    questions = read_questions(args.questions)
    work = Path(tempfile.mkdtemp(prefix="embedhub-real-documents-"))
    try:
        return measure(args, questions, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(args, questions: list[Question], work: Path) -> int:
    from embedhub.config import Settings
    from embedhub.kb.collection import KnowledgeBase
    from embedhub.models.backends import load_encoder
    from embedhub.models.cpu import detect_cpu

    settings = Settings(home=work / "home")
    encoder = load_encoder(args.model, settings)
    reference = args.model if args.model != "auto" else encoder.spec.name
    kb = KnowledgeBase(settings)
    files = corpus_files(args.data, questions)
    documents = {str(path): load_document(path) for path in files}
    extracted = answer_extracted(args.data, questions, documents)
    files_of = {q.file: {str(args.data / q.file)} for q in questions}
    collection, stats = ingest(kb, "real_documents", encoder, reference, files)
    try:
        outcomes = run_questions(collection, encoder, questions, documents, files_of, extracted)
    finally:
        collection.close()
    for outcome in outcomes:  # paths as the question file names them, not this machine's
        for item in outcome["evidence"]:
            item["path"] = Path(item["path"]).relative_to(args.data).as_posix()
    cpu = detect_cpu(settings.cpu_class)
    results: dict = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit_of(HERE.parent),
        "cpu": f"{cpu.model or platform.processor() or 'unknown'} ({cpu.cpu_class})",
        "model": encoder.spec.name,
        "backend": getattr(encoder, "backend", "unknown"),
        "question_count": len(questions),
        "ingest": stats,
        "rules": {
            "bears_answer": f"same file, and the passage (whitespace-normalised) is in the chunk or a "
            f"common substring covers >= {COVERAGE:.0%} of its characters",
            "fragment": f"body without own headings < {MIN_BODY_CHARS} characters, or part of a table "
            "without that table's header row",
            "mid_word": "between two letters/digits, or inside a jieba word between Han characters",
        },
        "summary": breakdown(outcomes),
        "questions": outcomes,
    }
    if args.ocr:
        results["ocr"] = ocr_part(args, kb, encoder, reference, questions, work)
    report = markdown(results)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.markdown is not None:
        args.markdown.write_text(report, encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
