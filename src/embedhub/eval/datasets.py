"""Readers for the evaluation data layouts. Nothing is downloaded: every reader takes a path.

Layouts (the ones in ../shared/data, and what a user can point `--data` at):
- BEIR: a folder with corpus.jsonl (`_id, title, text`), queries.jsonl (`_id, text`) and
  qrels/SPLIT.tsv (`query-id corpus-id score`, header optional).
- sentence pairs: tab-separated `s1 s2 label` (LCQMC, AFQMC, OPPO-xiaobu, Chinese-STS-B), CSV
  `sentence1,sentence2,score` (stsb-multi-mt), SICK, STS 2016 (`score s1 s2`, unscored rows are
  distractors), PAWS-X (`id sentence1 sentence2 label` with a header), FewCLUE json lines, TrecQA
  CSV `qtext,label,atext`, CoSQA json (`doc`, `code`, `label`).
- classification: AG News CSV (`class,title,description`), FewCLUE json lines.
- Tatoeba: `tatoeba.LANG-eng.LANG` / `.eng`, line i of one translating line i of the other.
- CoSQA retrieval: cosqa-retrieval-SPLIT-500.json plus code_idx_map.txt.
- long documents: every .txt / .md under a folder.

A dataset that is not there raises `DataMissingError`, which names every path looked at.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from embedhub.errors import EmbedhubError
from embedhub.models.spec import Task

csv.field_size_limit(1 << 30)


class DataMissingError(EmbedhubError, FileNotFoundError):
    """The data a task needs is not at the path(s) it looked at."""

    def __init__(self, task: str, looked_at: Sequence[Path | str], hint: str = "") -> None:
        self.task = task
        self.looked_at = [str(path) for path in looked_at]
        places = "; ".join(self.looked_at) or "(no path)"
        message = f"no data for task {task!r}: looked at {places}"
        if hint:
            message += f". {hint}"
        super().__init__(message)


class DataFormatError(EmbedhubError, ValueError):
    """A data file exists but is not in the layout its reader expects."""


# --- retrieval -----------------------------------------------------------------------------------


@dataclass
class RetrievalSet:
    """A corpus, queries and relevance judgements (BEIR layout, or built in memory)."""

    name: str
    corpus_ids: list[str]
    corpus_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]
    split: str
    path: Path | None = None
    language: str = "en"
    #: document titles when the corpus has them (the knowledge-base modes make them headings)
    corpus_titles: list[str] | None = None

    def subsample_queries(self, limit: int | None, seed: int) -> RetrievalSet:
        from embedhub.eval.core import sample_indices

        keep = sample_indices(len(self.query_ids), limit, seed)
        if len(keep) == len(self.query_ids):
            return self
        ids = [self.query_ids[i] for i in keep]
        return replace(
            self,
            query_ids=ids,
            query_texts=[self.query_texts[i] for i in keep],
            qrels={qid: self.qrels[qid] for qid in ids},
        )


def read_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise DataFormatError(f"{path}:{number} is not valid JSON: {error}") from error


def beir_split(folder: Path, split: str | None = None) -> str:
    """`split` when given (and present); else `test` when qrels/test.tsv exists; else the only one."""
    qrels_dir = folder / "qrels"
    available = sorted(path.stem for path in qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
    if split is not None:
        if split not in available:
            raise DataMissingError(
                "retrieval",
                [qrels_dir / f"{split}.tsv"],
                f"available splits: {', '.join(available) or 'none'}",
            )
        return split
    if "test" in available:
        return "test"
    if len(available) == 1:
        return available[0]
    if not available:
        raise DataMissingError("retrieval", [qrels_dir / "*.tsv"], "a BEIR folder needs qrels/SPLIT.tsv")
    raise DataFormatError(
        f"{qrels_dir} has several splits ({', '.join(available)}) and no test.tsv; choose one with --split"
    )


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or not line.strip():
                continue
            if number == 1 and not _is_number(parts[-1]):
                continue  # header: query-id corpus-id score
            query_id, doc_id, score = parts[0], parts[1], parts[-1]
            try:
                qrels.setdefault(query_id, {})[doc_id] = int(float(score))
            except ValueError as error:
                raise DataFormatError(f"{path}:{number}: score {score!r} is not a number") from error
    return qrels


def read_beir(folder: Path, split: str | None = None, name: str | None = None) -> RetrievalSet:
    """A BEIR folder. Documents are `title + " " + text`; only queries judged in the split are kept."""
    folder = Path(folder)
    needed = [folder / "corpus.jsonl", folder / "queries.jsonl"]
    if not all(path.exists() for path in needed):
        raise DataMissingError("retrieval", needed, "a BEIR folder has corpus.jsonl, queries.jsonl, qrels/")
    chosen = beir_split(folder, split)
    qrels = read_qrels(folder / "qrels" / f"{chosen}.tsv")
    corpus_ids, corpus_texts, corpus_titles = [], [], []
    for row in read_jsonl(folder / "corpus.jsonl"):
        corpus_ids.append(str(row["_id"]))
        title, text = (row.get("title") or "").strip(), (row.get("text") or "").strip()
        corpus_texts.append(f"{title} {text}".strip())
        corpus_titles.append(title)
    queries = {str(row["_id"]): str(row.get("text") or "") for row in read_jsonl(folder / "queries.jsonl")}
    known = set(corpus_ids)
    query_ids = [qid for qid in qrels if qid in queries]
    qrels = {qid: {d: s for d, s in qrels[qid].items() if d in known} for qid in query_ids}
    query_ids = [qid for qid in query_ids if any(score > 0 for score in qrels[qid].values())]
    language = "zh" if _mostly_cjk(corpus_texts[:50]) else "en"
    return RetrievalSet(
        name=name or folder.name,
        corpus_ids=corpus_ids,
        corpus_texts=corpus_texts,
        query_ids=query_ids,
        query_texts=[queries[qid] for qid in query_ids],
        qrels={qid: qrels[qid] for qid in query_ids},
        split=chosen,
        path=folder,
        language=language,
        corpus_titles=corpus_titles,
    )


def cosqa_split(folder: Path, split: str | None = None) -> str:
    available = sorted(
        path.name[len("cosqa-retrieval-") : -len("-500.json")]
        for path in folder.glob("cosqa-retrieval-*-500.json")
    )
    if split is not None:
        if split not in available:
            raise DataMissingError(
                "code",
                [folder / f"cosqa-retrieval-{split}-500.json"],
                f"available splits: {', '.join(available) or 'none'}",
            )
        return split
    if not available:
        raise DataMissingError("code", [folder / "cosqa-retrieval-SPLIT-500.json"])
    return "test" if "test" in available else available[0]


def read_cosqa(folder: Path, split: str | None = None, name: str = "cosqa") -> RetrievalSet:
    """CoSQA code search: each query's one relevant function is its `retrieval_idx` in the code base."""
    folder = Path(folder)
    code_map = folder / "code_idx_map.txt"
    if not code_map.exists():
        raise DataMissingError("code", [code_map])
    chosen = cosqa_split(folder, split)
    code = json.loads(code_map.read_text(encoding="utf-8"))
    by_index = {str(index): text for text, index in code.items()}
    corpus_ids = sorted(by_index, key=int)
    rows = json.loads((folder / f"cosqa-retrieval-{chosen}-500.json").read_text(encoding="utf-8"))
    query_ids, query_texts, qrels = [], [], {}
    for row in rows:
        qid = str(row["idx"])
        target = str(row["retrieval_idx"])
        if target not in by_index:
            raise DataFormatError(f"{folder}: query {qid} points at missing function {target}")
        query_ids.append(qid)
        query_texts.append(str(row["doc"]))
        qrels[qid] = {target: 1}
    return RetrievalSet(
        name=name,
        corpus_ids=corpus_ids,
        corpus_texts=[by_index[i] for i in corpus_ids],
        query_ids=query_ids,
        query_texts=query_texts,
        qrels=qrels,
        split=chosen,
        path=folder,
        language="code",
    )


# --- sentence pairs ------------------------------------------------------------------------------


@dataclass
class PairSet:
    """Sentence pairs with a gold score (graded) or a 0/1 label (binary)."""

    name: str
    first: list[str]
    second: list[str]
    labels: np.ndarray
    graded: bool
    path: Path | None = None
    split: str | None = None
    #: pairs sharing a group (e.g. one question's candidate answers) are also ranked per group
    groups: list[str] | None = None
    #: None: both sides are embedded alike (symmetric, STS instruction); a Task: the first side is
    #: a query with that task's instruction and the second a document
    asymmetric: Task | None = None

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.float64)
        if not (len(self.first) == len(self.second) == len(self.labels)):
            raise DataFormatError(f"{self.name}: pair columns have different lengths")

    def __len__(self) -> int:
        return len(self.first)

    def subsample(self, limit: int | None, seed: int) -> PairSet:
        from embedhub.eval.core import sample_indices

        keep = sample_indices(len(self), limit, seed)
        if len(keep) == len(self):
            return self
        return replace(
            self,
            first=[self.first[i] for i in keep],
            second=[self.second[i] for i in keep],
            labels=self.labels[keep],
            groups=[self.groups[i] for i in keep] if self.groups else None,
        )


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _pairs(name, rows, path, graded, **extra) -> PairSet:
    rows = list(rows)
    if not rows:
        raise DataFormatError(f"{path} holds no labelled sentence pairs")
    first, second, labels = zip(*rows, strict=True)
    return PairSet(name, list(first), list(second), np.array(labels, dtype=np.float64), graded, path, **extra)


def read_pairs_tsv(path: Path, name: str, graded: bool, split: str | None = None) -> PairSet:
    """Tab-separated `s1 s2 label` (a header row, when present, is skipped)."""
    rows = []
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            parts = [part.strip() for part in line.rstrip("\n").split("\t")]
            parts = [part for part in parts if part != ""] if len(parts) > 3 else parts
            if len(parts) < 3 or not _is_number(parts[2]) or not parts[0] or not parts[1]:
                continue
            rows.append((parts[0], parts[1], float(parts[2])))
    return _pairs(name, rows, path, graded, split=split)


def read_pairs_csv(path: Path, name: str, graded: bool = True, split: str | None = None) -> PairSet:
    """CSV `sentence1,sentence2,score` (stsb-multi-mt; a header row, when present, is skipped)."""
    with Path(path).open(encoding="utf-8", newline="") as handle:
        rows = [
            (row[0].strip(), row[1].strip(), float(row[2]))
            for row in csv.reader(handle)
            if len(row) >= 3 and _is_number(row[2]) and row[0].strip() and row[1].strip()
        ]
    return _pairs(name, rows, path, graded, split=split)


def read_sick(path: Path, name: str, split: str | None = None) -> PairSet:
    """SICK: pair_ID, sentence_A, sentence_B, relatedness_score, entailment_judgment (with header)."""
    rows = []
    with Path(path).open(encoding="utf-8-sig") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 4 and _is_number(parts[3]):
                rows.append((parts[1].strip(), parts[2].strip(), float(parts[3])))
    return _pairs(name, rows, path, True, split=split)


def read_sts16(path: Path, name: str) -> PairSet:
    """STS 2016: `score s1 s2`; rows without a score are unscored distractors and are dropped."""
    rows = []
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3 and parts[0].strip() and _is_number(parts[0]):
                rows.append((parts[1].strip(), parts[2].strip(), float(parts[0])))
    return _pairs(name, rows, path, True, split="test")


def read_pawsx(path: Path, name: str, split: str | None = None) -> PairSet:
    """PAWS-X: header `id sentence1 sentence2 label`."""
    rows = []
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 4 and _is_number(parts[3]) and parts[1].strip() and parts[2].strip():
                rows.append((parts[1].strip(), parts[2].strip(), float(parts[3])))
    return _pairs(name, rows, path, False, split=split)


def read_jsonl_pairs(path: Path, name: str, split: str | None = None) -> PairSet:
    """JSON lines with `sentence1`, `sentence2`, `label` (FewCLUE BUSTM, or a user's own file)."""
    rows = [
        (str(row["sentence1"]), str(row["sentence2"]), float(row["label"]))
        for row in read_jsonl(Path(path))
        if "label" in row and _is_number(str(row["label"]))
    ]
    labels = {row[2] for row in rows}
    return _pairs(name, rows, path, not labels <= {0.0, 1.0}, split=split)


def read_trecqa(path: Path, name: str, split: str | None = None) -> PairSet:
    """TrecQA answer selection, CSV `qtext,label,atext`: pairs grouped by question."""
    with Path(path).open(encoding="utf-8", newline="") as handle:
        rows = [
            (row["qtext"].strip(), row["atext"].strip(), float(row["label"]))
            for row in csv.DictReader(handle)
            if row.get("qtext") and row.get("atext") and _is_number(row.get("label", ""))
        ]
    pairs = _pairs(name, rows, path, False, split=split, asymmetric=Task.RETRIEVAL)
    pairs.groups = list(pairs.first)
    return pairs


def read_cosqa_pairs(path: Path, name: str, split: str | None = None) -> PairSet:
    """CoSQA code QA: a JSON list of {doc (query), code, label 0/1}."""
    rows = [
        (str(row["doc"]), str(row["code"]), float(row["label"]))
        for row in json.loads(Path(path).read_text(encoding="utf-8"))
    ]
    return _pairs(name, rows, path, False, split=split, asymmetric=Task.CODE)


def read_pair_file(path: Path, name: str | None = None) -> PairSet:
    """A user's pair file, by extension: .csv, .json / .jsonl, otherwise tab-separated."""
    path = Path(path)
    name = name or path.stem
    if path.suffix == ".csv":
        pairs = read_pairs_csv(path, name)
    elif path.suffix in {".json", ".jsonl"}:
        pairs = read_jsonl_pairs(path, name)
    else:
        pairs = read_pairs_tsv(path, name, graded=True)
    pairs.graded = not set(np.unique(pairs.labels)) <= {0.0, 1.0}
    return pairs


# --- classification ------------------------------------------------------------------------------


@dataclass
class ClassificationSet:
    """Labelled items to draw k-shot training sets from (`pool`) and to score on (`test`).

    Items are texts, or (text, text) pairs when `pairs` is set.
    """

    name: str
    pool_items: list
    pool_labels: list[str]
    test_items: list
    test_labels: list[str]
    pairs: bool = False
    path: Path | None = None
    note: str = ""
    language: str = "en"

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.pool_labels) | set(self.test_labels))


def read_agnews(path: Path) -> tuple[list[str], list[str]]:
    """AG News CSV `class,title,description` (class 1-4 named by classes.txt beside it)."""
    path = Path(path)
    names_file = path.parent / "classes.txt"
    names = names_file.read_text(encoding="utf-8").split() if names_file.exists() else []
    texts, labels = [], []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle):
            if len(row) < 3 or not row[0].strip().isdigit():
                continue
            index = int(row[0]) - 1
            labels.append(names[index] if 0 <= index < len(names) else row[0])
            title, description = row[1].strip(), re.sub(r"\s+", " ", row[2]).strip()
            texts.append(f"{title}. {description}".strip())
    return texts, labels


def read_fewclue_texts(path: Path) -> tuple[list[str], list[str]]:
    """FewCLUE json lines: the text is `sentence` (or `content`), the label `label`."""
    texts, labels = [], []
    for row in read_jsonl(Path(path)):
        text = row.get("sentence", row.get("content"))
        if text is None or "label" not in row:
            continue
        texts.append(str(text))
        labels.append(str(row["label"]))
    return texts, labels


def read_fewclue_pair_items(path: Path) -> tuple[list[tuple[str, str]], list[str]]:
    items, labels = [], []
    for row in read_jsonl(Path(path)):
        items.append((str(row["sentence1"]), str(row["sentence2"])))
        labels.append(str(row["label"]))
    return items, labels


def split_pool(
    items: list, labels: list[str], test_size: int, seed: int
) -> tuple[list, list[str], list, list[str]]:
    """A seeded split of one labelled file into a k-shot pool and a test set of `test_size`."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(items))
    test, pool = order[:test_size], order[test_size:]
    return (
        [items[i] for i in pool],
        [labels[i] for i in pool],
        [items[i] for i in test],
        [labels[i] for i in test],
    )


# --- bitext, long documents ----------------------------------------------------------------------


def tatoeba_languages(folder: Path) -> list[str]:
    """Languages with both `tatoeba.LANG-eng.LANG` and `tatoeba.LANG-eng.eng`."""
    found = []
    for path in sorted(Path(folder).glob("tatoeba.*-eng.eng")):
        lang = path.name[len("tatoeba.") : -len("-eng.eng")]
        if (path.parent / f"tatoeba.{lang}-eng.{lang}").exists():
            found.append(lang)
    return found


def read_tatoeba(folder: Path, lang: str) -> tuple[list[str], list[str]]:
    folder = Path(folder)
    source = folder / f"tatoeba.{lang}-eng.{lang}"
    target = folder / f"tatoeba.{lang}-eng.eng"
    if not (source.exists() and target.exists()):
        raise DataMissingError("bitext", [source, target])
    lines = [path.read_text(encoding="utf-8").lstrip("\ufeff").splitlines() for path in (source, target)]
    if len(lines[0]) != len(lines[1]):
        raise DataFormatError(f"{source} and {target} have different line counts")
    return [line.strip() for line in lines[0]], [line.strip() for line in lines[1]]


LONG_DOC_SUFFIXES = {".txt", ".md"}
NOT_DOCUMENTS = {"SOURCE.txt", "README.md", "README.txt"}


@dataclass
class LongDocument:
    name: str
    text: str
    path: Path | None = None
    language: str = field(default="en")


def read_long_docs(folder: Path, collection: str | None = None) -> list[LongDocument]:
    """Every .txt / .md file under a folder (SOURCE.txt and READMEs excluded), by path."""
    folder = Path(folder)
    if folder.is_file():
        paths = [folder]
        base = folder.parent
    else:
        paths = sorted(
            path
            for path in folder.rglob("*")
            if path.is_file() and path.suffix in LONG_DOC_SUFFIXES and path.name not in NOT_DOCUMENTS
        )
        base = folder
    documents = []
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n")
        if not text.strip():
            continue
        name = str(path.relative_to(base))
        if collection:
            name = f"{collection}/{name}"
        documents.append(LongDocument(name, text, path, "zh" if _mostly_cjk([text[:2000]]) else "en"))
    return documents


# --- finding data --------------------------------------------------------------------------------

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


def _mostly_cjk(texts: Sequence[str]) -> bool:
    sample = "".join(texts)[:20000]
    letters = sum(ch.isalpha() for ch in sample)
    return letters > 0 and len(_CJK.findall(sample)) / letters > 0.3


@dataclass(frozen=True)
class DatasetRef:
    """A known dataset under the data root: its name, the paths it needs, and how to read it.

    `optional` marks splits kept off this machine on purpose (hidden test sets): they are used when
    present and only mentioned when absent, without failing the task.
    """

    name: str
    paths: tuple[str, ...]
    read: Callable[..., object]
    optional: bool = False


def load_refs(
    task: str,
    root: Path,
    refs: Sequence[DatasetRef],
    selected: Sequence[str] = (),
) -> tuple[list[object], list[str]]:
    """Read the known datasets present under `root`; return them and notes about absent ones.

    Raises DataMissingError (naming every path looked at) when none is present.
    """
    root = Path(root)
    if selected:
        wanted = set(selected)
        unknown = wanted - {ref.name for ref in refs}
        if unknown:
            choices = ", ".join(ref.name for ref in refs)
            raise EmbedhubError(
                f"unknown dataset(s) {', '.join(sorted(unknown))} for {task}; choose from: {choices}"
            )
        refs = [ref for ref in refs if ref.name in wanted]
    loaded, notes, looked_at = [], [], []
    for ref in refs:
        paths = [root / rel for rel in ref.paths]
        absent = [path for path in paths if not path.exists()]
        if absent:
            looked_at.extend(absent)
            if ref.optional:
                notes.append(f"{ref.name}: not on this machine ({absent[0]}); skipped")
            else:
                notes.append(f"{ref.name}: data missing, looked at {absent[0]}; skipped")
            continue
        loaded.append(ref.read(*paths))
    if not loaded:
        raise DataMissingError(task, looked_at)
    return loaded, notes
