"""Shared fixtures: an isolated EMBEDHUB_HOME, the tiny random Qwen3 model, the offline MiniLM."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from embedhub.config import Settings

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EMBEDHUB_SHARED_DATA", ROOT.parent / "shared" / "data"))


#: the files that take minutes (README commands, shutdowns, model conversions, Ray, browsers), run
#: first: xdist hands test files to its two workers in collection order (pyproject's addopts turn
#: off its default reordering by test count, which put the one-test README files last), and one of
#: these left for last kept one worker busy for minutes while the other sat idle. The README's
#: commands are split into groups, a file each (tests/docs_commands.py), so both workers share them.
LONG_FILES = (
    "tests/test_readme_knowledge_base.py",
    "tests/test_kb_shutdown.py",
    "tests/test_readme_milvus.py",
    "tests/test_gguf.py",
    "tests/test_readme_answers.py",
    "tests/test_bench.py",
    "tests/test_readme_models.py",
    "tests/test_packed_model.py",
    "tests/test_readme_remote_encoders.py",
    "tests/kb/test_ray_ingest.py",
    "tests/test_readme_server.py",
    "tests/test_ui_accounts_browser.py",
    "tests/test_readme_ray.py",
    "tests/test_ui_browser.py",
    "tests/test_remote_backend.py",
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
    from embedhub.models.loading import load_encoder

    return load_encoder(str(tiny_model_dir), settings)


@pytest.fixture(scope="session")
def minilm_encoder(settings):
    from embedhub.models.loading import load_encoder

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
def tiny_reranker(tiny_reranker_dir, settings):
    from embedhub.models.reranker import load_reranker

    return load_reranker(str(tiny_reranker_dir), settings)
