"""Readers: layouts, split choice, and missing data that names the paths looked at."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embedhub.errors import EmbedhubError
from embedhub.eval import datasets as d
from embedhub.eval.lexical import BM25Index
from tests.eval.conftest import build_beir


def test_beir_split_prefers_test_then_the_only_file(tmp_path):
    both = tmp_path / "both"
    build_beir(both, splits=("train", "test"))
    assert d.beir_split(both) == "test"
    assert d.beir_split(both, "train") == "train"
    only = tmp_path / "only"
    build_beir(only, splits=("dev",))
    assert d.beir_split(only) == "dev"
    several = tmp_path / "several"
    build_beir(several, splits=("dev", "train"))
    with pytest.raises(d.DataFormatError, match="--split"):
        d.beir_split(several)
    with pytest.raises(d.DataMissingError, match=r"available splits: dev, train"):
        d.beir_split(several, "test")


def test_read_beir_joins_title_and_text_and_keeps_judged_queries(tmp_path):
    build_beir(tmp_path, splits=("test",))
    dataset = d.read_beir(tmp_path)
    assert dataset.split == "test" and dataset.name == tmp_path.name
    assert len(dataset.corpus_ids) == 12 and dataset.query_ids == [f"q{i}" for i in range(6)]
    assert dataset.corpus_texts[0].startswith("Title apple ")
    assert dataset.qrels["q2"] == {"d2": 1}
    assert dataset.language == "en"
    small = dataset.subsample_queries(2, seed=0)
    assert len(small.query_ids) == 2 and set(small.qrels) == set(small.query_ids)


def test_missing_beir_names_the_paths(tmp_path):
    with pytest.raises(d.DataMissingError) as error:
        d.read_beir(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere" / "corpus.jsonl") in str(error.value)
    assert isinstance(error.value, EmbedhubError)


def test_pair_readers(tmp_path):
    sts16 = tmp_path / "sts16.tsv"
    sts16.write_text("4.5\ta b\tc d\n\tunscored one\tdistractor\n0\te f\tg h\n")
    pairs = d.read_sts16(sts16, "sts16")
    assert pairs.first == ["a b", "e f"] and pairs.labels.tolist() == [4.5, 0.0] and pairs.graded

    sick = tmp_path / "sick.txt"
    sick.write_text(
        "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n1\tA x\tB y\t3.6\tNEUTRAL\n"
    )
    assert d.read_sick(sick, "sick").labels.tolist() == [3.6]

    paws = tmp_path / "paws.tsv"
    paws.write_text("id\tsentence1\tsentence2\tlabel\n1\t甲\t乙\t1\n2\t丙\t丁\t0\n")
    pairs = d.read_pawsx(paws, "paws")
    assert pairs.second == ["乙", "丁"] and not pairs.graded

    tsv = tmp_path / "lcqmc.txt"
    tsv.write_text("s1\ts2\tlabel\nq a\tq b\t1\nbroken line\n")
    assert d.read_pairs_tsv(tsv, "lcqmc", graded=False).first == ["q a"]

    csv_file = tmp_path / "stsb.csv"
    csv_file.write_text('"A, with comma",B,4.2\nC,D,0.0\n')
    pairs = d.read_pair_file(csv_file)
    assert pairs.first[0] == "A, with comma" and pairs.graded

    jsonl = tmp_path / "bustm.json"
    jsonl.write_text(json.dumps({"sentence1": "x", "sentence2": "y", "label": "1"}) + "\n")
    assert not d.read_pair_file(jsonl).graded

    with pytest.raises(d.DataFormatError, match="no labelled"):
        d.read_pairs_tsv(tmp_path / "sick.txt", "nothing", graded=True)


def test_pairs_subsample_is_seeded_and_aligned():
    pairs = d.PairSet("p", [str(i) for i in range(50)], [f"x{i}" for i in range(50)], np.arange(50), True)
    a, b = pairs.subsample(10, seed=3), pairs.subsample(10, seed=3)
    assert a.first == b.first and len(a) == 10
    assert all(f"x{first}" == second for first, second in zip(a.first, a.second, strict=True))
    assert a.labels.tolist() == [int(x) for x in a.first]


def test_trecqa_groups_by_question(data_root):
    pairs = d.read_trecqa(data_root / "en-sts-sick-sts16" / "trecqa-wang" / "dev.csv", "trecqa")
    assert len(pairs) == 9 and pairs.groups is not None and len(set(pairs.groups)) == 3
    assert pairs.asymmetric is not None


def test_classification_readers(data_root):
    texts, labels = d.read_agnews(data_root / "ag-news-test" / "test.csv")
    assert len(texts) == 24 and set(labels) == {"World", "Sports"}
    assert texts[0].startswith("headline 0. ")
    texts, labels = d.read_fewclue_texts(
        data_root / "fewclue-zh-classification" / "tnews" / "train_few_all.json"
    )
    assert set(labels) == {"100", "101", "102"}
    pool, _, test, _ = d.split_pool(list(range(20)), ["a"] * 20, 5, seed=0)
    assert len(test) == 5 and sorted(pool + test) == list(range(20))


def test_tatoeba_and_cosqa(data_root):
    folder = data_root / "tatoeba-laser"
    assert d.tatoeba_languages(folder) == ["deu"]
    source, english = d.read_tatoeba(folder, "deu")
    assert len(source) == len(english) == 10
    with pytest.raises(d.DataMissingError, match=r"tatoeba\.fra-eng\.fra"):
        d.read_tatoeba(folder, "fra")
    code = d.read_cosqa(data_root / "cosqa-code-search")
    assert code.split == "dev" and len(code.corpus_ids) == 8
    assert code.qrels["cosqa-2"] == {"2": 1}
    assert code.corpus_texts[2].startswith("def cherry_dolphin")


def test_long_docs_skip_provenance(data_root):
    docs = d.read_long_docs(data_root / "long-docs-en", collection="long-docs-en")
    assert [doc.name for doc in docs] == ["long-docs-en/story.txt"]


def test_load_refs_notes_optional_and_fails_when_nothing(tmp_path):
    (tmp_path / "here.txt").write_text("x")
    refs = [
        d.DatasetRef("here", ("here.txt",), lambda p: p.name),
        d.DatasetRef("hidden", ("hidden.txt",), lambda p: p.name, optional=True),
    ]
    loaded, notes = d.load_refs("t", tmp_path, refs)
    assert loaded == ["here.txt"]
    assert notes == [f"hidden: not on this machine ({tmp_path / 'hidden.txt'}); skipped"]
    with pytest.raises(EmbedhubError, match="choose from: here, hidden"):
        d.load_refs("t", tmp_path, refs, selected=["nope"])
    with pytest.raises(d.DataMissingError, match=r"hidden\.txt"):
        d.load_refs("t", tmp_path, refs, selected=["hidden"])


def test_bm25_ranks_the_matching_document_first():
    docs = ["the cat sat on the mat", "dogs chase cats", "quantum chromodynamics of gluons", ""]
    index = BM25Index(docs)
    hits = index.search("gluons quantum", depth=10)
    assert hits[0][0] == 2 and all(score > 0 for _, score in hits)
    assert [i for i, _ in hits] == [2]  # documents without a query word are not returned
    assert index.search("zzz unknown", depth=10) == []
