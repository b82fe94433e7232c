"""The one analyzer: English stemming and stop words, Chinese words (with characters for names jieba
does not know), mixed text, identifiers; the knowledge base and the evaluation baseline use it,
and a collection indexed by an older analyzer is re-analysed when opened."""

from __future__ import annotations

import json

import pytest

from embedhub.errors import InvalidInputError
from embedhub.eval.lexical import BM25Index
from embedhub.kb.collection import KnowledgeBase
from embedhub.kb.ingest import Ingestor
from embedhub.kb.lexical import ANALYZER_VERSION, Analyzer, analyze
from embedhub.kb.search import Searcher


def test_english_is_stemmed_and_stop_words_dropped():
    terms = analyze("The studies of running cells are published in the journals")
    assert terms == analyze("study run cell publish journal")
    assert not {"the", "of", "in", "are"} & set(terms)
    assert analyze("Cancer cell's proteins") == ["cancer", "cell", "protein"]


def test_chinese_words_and_characters_of_unknown_names():
    terms = analyze("我爱北京天安门")
    assert {"北京", "天安门"} <= set(terms)
    assert "的" not in analyze("国家的法律")  # a Chinese stop word
    # 斗酒 is not in jieba's dictionary: its characters are terms too, so 酒 alone still matches
    terms = analyze("李白斗酒诗百篇")
    assert {"李白", "斗酒", "斗", "酒"} <= set(terms)
    assert "李" not in terms  # a known word is not split into characters


def test_mixed_scripts_are_handled_per_script():
    terms = analyze("Indexing 数据库 records with jieba, 然后 searching")
    assert {"index", "数据库", "record", "jieba", "search"} <= set(terms)
    assert "数据" in terms  # search mode: the shorter words inside a compound


def test_identifiers_keep_whole_and_parts():
    terms = analyze("def parse_url(rawURL): return readFile(x)")
    for term in ("parse_url", "url", "rawurl", "raw", "read", "file"):
        assert term in terms, term
    assert analyze("p53 and IL-6") == ["p53", "il"]  # not identifier parts; single characters dropped


def test_other_languages_and_no_stemming():
    assert Analyzer("french").terms("les pommes") == Analyzer("french").terms("pomme") == ["pomm"]
    assert Analyzer("none").terms("The studies") == ["the", "studies"]
    with pytest.raises(InvalidInputError, match=r"unknown lexical language 'klingon'.*english"):
        Analyzer("klingon")


def test_highlight_marks_words_by_their_stem():
    spans = Analyzer().marks("Studies show the study of cafés; artists restart art.", "study café art")
    text = "Studies show the study of cafés; artists restart art."
    assert [text[a:b] for a, b in spans] == ["Studies", "study", "cafés", "art"]


def test_evaluation_baseline_uses_the_same_analyzer():
    index = BM25Index(["Cells were studied in mice", "A report on galaxies"])
    assert [doc for doc, _ in index.search("study of a cell", depth=5)] == [0]


def test_knowledge_base_lexical_search_matches_stems(collection, tiny_encoder, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("Researchers studied how cells divide.")
    (folder / "b.txt").write_text("Galaxies rotate slowly.")
    Ingestor(collection, tiny_encoder).ingest([folder])
    hits = Searcher(collection, tiny_encoder).search("study of dividing cell", k=5, mode="lexical")
    assert [hit.path.rsplit("/", 1)[-1] for hit in hits] == ["a.txt"]
    assert "<mark>studied</mark>" in hits[0].snippet and "<mark>cells</mark>" in hits[0].snippet


def test_collection_from_an_older_analyzer_is_reanalysed_on_open(
    settings, tiny_encoder, tmp_path, monkeypatch
):
    from embedhub.kb.store import lance

    monkeypatch.setattr(lance, "REWRITE_BATCH", 2)  # several batches, written while reading
    knowledge_base = KnowledgeBase(settings)
    collection = knowledge_base.create("old", tiny_encoder, model_reference="tiny")
    folder = tmp_path / "docs"
    folder.mkdir()
    for index in range(5):
        (folder / f"{index}.txt").write_text(f"Document {index}: researchers studied dividing cells.")
    Ingestor(collection, tiny_encoder).ingest([folder])
    # what an older embedhub wrote: unstemmed terms and no analyzer version in collection.json
    collection.store.rewrite_terms(lambda text, headings: " ".join(text.lower().split()))
    config_path = collection.folder / "collection.json"
    stored = json.loads(config_path.read_text())
    del stored["lexical_version"], stored["lexical_language"]
    config_path.write_text(json.dumps(stored))
    knowledge_base.close()

    reopened = KnowledgeBase(settings).get("old")
    assert json.loads(config_path.read_text())["lexical_version"] == ANALYZER_VERSION
    rows = [row for doc in reopened.manifest.documents() for row in reopened.store.rows_of(doc.doc_id)]
    assert len(rows) == 5 and all("studi" in row.terms.split() for row in rows)
    hits = Searcher(reopened, tiny_encoder).search("study", k=10, mode="lexical")
    assert len(hits) == 5


def test_collection_language_is_validated_and_used(settings, tiny_encoder):
    knowledge_base = KnowledgeBase(settings)
    with pytest.raises(InvalidInputError, match="unknown lexical language"):
        knowledge_base.create("x", tiny_encoder, model_reference="tiny", lexical_language="elvish")
    assert "x" not in knowledge_base.names()
    collection = knowledge_base.create("fr", tiny_encoder, model_reference="tiny", lexical_language="french")
    assert collection.config.analyzer == Analyzer("french")


def test_query_instruction_by_task_name_or_text(settings, tiny_encoder, minilm_encoder):
    from embedhub.models.spec import QWEN3_INSTRUCTIONS, Task

    knowledge_base = KnowledgeBase(settings)
    named = knowledge_base.create("code", tiny_encoder, model_reference="tiny", instruction="Code")
    assert named.config.instruction == QWEN3_INSTRUCTIONS[Task.CODE]
    own = knowledge_base.create("own", tiny_encoder, model_reference="tiny", instruction="Find statutes")
    assert own.config.instruction == "Find statutes"
    default = knowledge_base.create("default", tiny_encoder, model_reference="tiny")
    assert default.config.instruction == QWEN3_INSTRUCTIONS[Task.RETRIEVAL]
    with pytest.raises(InvalidInputError, match="instruction is empty"):
        knowledge_base.create("blank", tiny_encoder, model_reference="tiny", instruction="  ")
    with pytest.raises(InvalidInputError, match="not instruction-aware"):
        knowledge_base.create("mini", minilm_encoder, model_reference="minilm", instruction="code")


def test_text_index_is_rebuilt_once_unindexed_rows_are_a_share_of_it(tmp_path, monkeypatch):
    import numpy as np

    from embedhub.kb.store import ChunkRow, SearchFilter, lance

    monkeypatch.setattr(lance, "REINDEX_MIN_ROWS", 2)
    store = lance.LanceStore(tmp_path / "store", 4)

    def add(start: int, count: int) -> None:
        rows = [
            ChunkRow(
                f"c{i}", f"d{i}", 1, 0, "p", "text", f"t{i}", f"word{i % 3} common", 0, 1, None, None, (), "h"
            )
            for i in range(start, start + count)
        ]
        store.add(rows, np.ones((count, 4), dtype=np.float32))

    add(0, 40)
    assert len(store.lexical_search("word1", 100, SearchFilter())) == 13  # builds the index
    add(40, 2)  # within the tolerated share: searched by scanning, not re-indexed
    assert len(store.lexical_search("word1", 100, SearchFilter())) == 14
    assert store.table.index_stats(lance.TEXT_INDEX).num_unindexed_rows == 2
    add(42, 10)
    store.lexical_search("word1", 100, SearchFilter())
    stats = store.table.index_stats(lance.TEXT_INDEX)
    assert (stats.num_indexed_rows, stats.num_unindexed_rows) == (52, 0)
