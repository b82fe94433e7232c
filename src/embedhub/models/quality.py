"""The accuracy gate for quantised backends: a variant must reproduce the float32 vectors.

Two checks on fixed texts (English, Chinese, German, other languages, code; short and long):
every vector's cosine to the float32 vector of the same input >= MIN_COSINE (documents and
queries, so instructions and prefixes are covered), and the top-K neighbours of each query in a
small corpus overlap the float32 neighbours by >= MIN_OVERLAP on average (what retrieval feels).
The result is cached beside the variant (models/variants.py), once per weights and CPU class:
the same int8 variant can pass on one CPU and fail on another (models/cpu.py), so a home moved to
another machine, or `EMBEDHUB_CPU_CLASS`, measures again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from embedhub.config import Settings
from embedhub.models.base import Encoder
from embedhub.models.cpu import detect_cpu
from embedhub.models.variants import variant_dir, write_json_atomic

MIN_COSINE = 0.99
MIN_OVERLAP = 0.9
TOP_K = 10
GATE_VERSION = 1

_LONG_EN = (
    "Retrieval-augmented generation systems split long documents into chunks, embed every chunk "
    "with a bi-encoder and store the vectors in an approximate nearest-neighbour index. At query "
    "time the question is embedded with the same model, the closest chunks are fetched, optionally "
    "re-ranked by a cross-encoder, and passed to a language model as context. The quality of the "
    "whole pipeline depends on the embedding model: if two paraphrases land far apart, or an "
    "unrelated passage lands close, no amount of prompting recovers the missing evidence. "
) * 3
_LONG_ZH = (
    "向量检索系统把长文档切分成若干片段，用编码模型把每个片段转换成向量，并存入近似最近邻索引。"
    "查询时，用同一个模型对问题进行编码，取回距离最近的片段，再交给大语言模型作为上下文。"
    "整个流程的效果取决于嵌入模型：如果两个同义句被映射得很远，检索就无法找到需要的证据。"
) * 3

GATE_TEXTS: tuple[str, ...] = (
    "hello",
    "How do I reset my password?",
    "The cat sat on the mat.",
    "A man is playing a guitar on stage.",
    "Aspirin reduces the risk of heart attack in patients with coronary artery disease.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "What is the capital of Australia?",
    "The stock market fell sharply after the central bank raised interest rates.",
    _LONG_EN,
    "北京是中国的首都。",
    "如何提高深度学习模型的推理速度？",
    "今天天气很好，我们去公园散步吧。",
    "这家餐厅的服务态度非常差，菜也不好吃。",
    _LONG_ZH,
    "Wie spät ist es?",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Die Bundesregierung plant neue Gesetze zum Klimaschutz und zur Energiewende.",
    "Maschinelles Lernen ist ein Teilgebiet der künstlichen Intelligenz.",
    "Le chat dort sur le canapé depuis ce matin.",
    "¿Dónde está la estación de tren más cercana?",
    "東京は日本の首都です。",
    "Москва — столица России.",
    "def add(a, b):\n    return a + b",
    "for (int i = 0; i < n; i++) { sum += values[i]; }",
    "SELECT name, COUNT(*) FROM orders GROUP BY name HAVING COUNT(*) > 10;",
    "import numpy as np\nx = np.linalg.norm(vectors, axis=1)",
    'fn main() { println!("Hello, world!"); }',
    "Error: connection refused (ECONNREFUSED) at 127.0.0.1:5432",
    "COVID-19 vaccines reduce severe illness and hospitalisation.",
    "The Eiffel Tower is 330 metres tall and stands in Paris.",
)

CORPUS_EXTRA: tuple[str, ...] = (
    "To change your password, open Settings and choose Security.",
    "Canberra is the capital city of Australia.",
    "Sydney is the largest city in Australia.",
    "A dog is running in the park.",
    "A woman plays the piano in a concert hall.",
    "Low-dose aspirin is used to prevent cardiovascular events.",
    "Plants use chlorophyll to absorb sunlight.",
    "Interest rate hikes often lead to falling share prices.",
    "Vector databases store embeddings for similarity search.",
    "上海是中国最大的城市。",
    "模型量化可以加快推理速度并减少内存占用。",
    "明天可能会下雨，记得带伞。",
    "这家酒店的房间很干净，早餐也很丰富。",
    "Wie viel Uhr haben wir?",
    "Ein Hund schläft im Garten.",
    "Erneuerbare Energien sollen Kohlekraftwerke ersetzen.",
    "Neuronale Netze lernen aus Beispielen.",
    "Le chien joue dans le jardin.",
    "¿Cuánto cuesta un billete de tren a Madrid?",
    "大阪は日本で二番目に大きな都市です。",
    "Санкт-Петербург — второй по величине город России.",
    "def multiply(a, b):\n    return a * b",
    "while (i < n) { total += data[i++]; }",
    "SELECT COUNT(*) FROM users WHERE active = 1;",
    "import torch\ny = torch.nn.functional.normalize(x, dim=-1)",
    "fn add(a: i32, b: i32) -> i32 { a + b }",
    "The database server is not accepting connections on port 5432.",
    "Vaccination lowers the risk of hospital admission.",
    "The Statue of Liberty stands in New York Harbor.",
    "Mount Everest is the highest mountain on Earth.",
)


@dataclass(frozen=True)
class QualityReport:
    """How close a variant came to float32, and whether that passes."""

    min_cosine: float
    mean_cosine: float
    worst_text: str
    neighbour_overlap: float
    min_cosine_required: float = MIN_COSINE
    min_overlap_required: float = MIN_OVERLAP

    @property
    def passed(self) -> bool:
        return (
            self.min_cosine >= self.min_cosine_required
            and self.neighbour_overlap >= self.min_overlap_required
        )

    def describe(self) -> str:
        return (
            f"cosine to float32 min {self.min_cosine:.4f} (needs >= {self.min_cosine_required}, "
            f"worst on {self.worst_text[:40]!r}), mean {self.mean_cosine:.4f}; top-{TOP_K} neighbour "
            f"overlap {self.neighbour_overlap:.3f} (needs >= {self.min_overlap_required})"
        )


def _vectors(encoder: Encoder) -> tuple[np.ndarray, np.ndarray]:
    documents = encoder.encode(list(GATE_TEXTS + CORPUS_EXTRA), truncate=True).vectors
    queries = encoder.encode(list(GATE_TEXTS), kind="query", truncate=True).vectors
    return documents, queries


def compare(candidate: Encoder, reference: Encoder) -> QualityReport:
    """Gate figures of `candidate` against the float32 `reference` (same model)."""
    documents, queries = _vectors(candidate)
    reference_documents, reference_queries = _vectors(reference)
    texts = list(GATE_TEXTS + CORPUS_EXTRA + GATE_TEXTS)
    cosines = np.concatenate(
        [
            np.sum(documents * reference_documents, axis=1),
            np.sum(queries * reference_queries, axis=1),
        ]
    )
    k = min(TOP_K, len(documents))
    mine = np.argsort(-(queries @ documents.T), axis=1)[:, :k]
    theirs = np.argsort(-(reference_queries @ reference_documents.T), axis=1)[:, :k]
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(mine, theirs, strict=True)])
    worst = int(np.argmin(cosines))
    return QualityReport(
        min_cosine=float(cosines.min()),
        mean_cosine=float(cosines.mean()),
        worst_text=texts[worst][:80],
        neighbour_overlap=float(overlap),
    )


def ensure_quality(
    candidate: Encoder, make_reference: Callable[[], Encoder], folder: Path, settings: Settings
) -> QualityReport:
    """The cached gate result for this variant, computing it (loading float32) when missing."""
    beside = getattr(candidate, "variant_folder", None)
    if beside is None:
        beside = variant_dir(settings, candidate.spec.name, folder, candidate.backend, GATE_VERSION)
    cpu_class = detect_cpu(settings.cpu_class).cpu_class
    path = Path(beside) / f"quality-v{GATE_VERSION}-{cpu_class}.json"
    if path.exists():
        try:
            figures = json.loads(path.read_text(encoding="utf-8"))
            return QualityReport(
                min_cosine=float(figures["min_cosine"]),
                mean_cosine=float(figures["mean_cosine"]),
                worst_text=str(figures["worst_text"]),
                neighbour_overlap=float(figures["neighbour_overlap"]),
            )  # thresholds are today's, not the cached ones
        except (KeyError, TypeError, ValueError):
            pass  # unreadable: measure again
    reference = make_reference()
    try:
        report = compare(candidate, reference)
    finally:
        reference.close()
    write_json_atomic(path, asdict(report))
    return report
