"""The documented Open WebUI settings agree with what embedhub accepts (fast; no Open WebUI needed)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from embedhub.config import Settings
from embedhub.models.registry import REGISTRY
from embedhub.models.spec import InputKind
from embedhub.server.schemas import EmbeddingRequest
from tests.clients.recipe import RECIPE_DOC, recipe_environment

REQUIRED = {
    "RAG_EMBEDDING_ENGINE",
    "RAG_OPENAI_API_BASE_URL",
    "RAG_OPENAI_API_KEY",
    "RAG_EMBEDDING_MODEL",
    "RAG_EMBEDDING_BATCH_SIZE",
    "RAG_EMBEDDING_PREFIX_FIELD_NAME",
    "RAG_EMBEDDING_QUERY_PREFIX",
    "RAG_EMBEDDING_CONTENT_PREFIX",
}


@pytest.fixture(scope="module")
def recipe() -> dict[str, str]:
    return recipe_environment()


def test_recipe_sets_every_variable(recipe):
    assert set(recipe) == REQUIRED
    assert recipe["RAG_EMBEDDING_ENGINE"] == "openai"
    assert recipe["RAG_OPENAI_API_KEY"], "Open WebUI always sends a key; an empty one reads as a mistake"


def test_recipe_key_is_the_one_embedhub_is_started_with(recipe):
    assert f"embedhub serve --port 8000 --api-key {recipe['RAG_OPENAI_API_KEY']}\n" in RECIPE_DOC.read_text(
        encoding="utf-8"
    )


def test_recipe_points_at_the_default_embedhub_address(recipe):
    url = urlsplit(recipe["RAG_OPENAI_API_BASE_URL"])
    defaults = Settings.model_fields
    expected = ("http", defaults["host"].default, defaults["port"].default, "/v1")
    assert (url.scheme, url.hostname, url.port, url.path) == expected


def test_recipe_model_is_the_offline_default(recipe):
    spec = REGISTRY.get(recipe["RAG_EMBEDDING_MODEL"])
    assert spec.name == "multilingual-e5-small-q4"


def test_recipe_prefixes_are_embedhub_input_types(recipe):
    field = recipe["RAG_EMBEDDING_PREFIX_FIELD_NAME"]
    assert field in EmbeddingRequest.model_fields
    assert InputKind.parse(recipe["RAG_EMBEDDING_QUERY_PREFIX"]) is InputKind.QUERY
    assert InputKind.parse(recipe["RAG_EMBEDDING_CONTENT_PREFIX"]) is InputKind.DOCUMENT


def test_recipe_batch_fits_one_request(recipe):
    batch = int(recipe["RAG_EMBEDDING_BATCH_SIZE"])
    assert 1 <= batch <= Settings.model_fields["max_items_per_request"].default


def test_recipe_parser_rejects_a_malformed_block(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- open-webui-env: x -->\n```sh\nRAG_EMBEDDING_ENGINE openai\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not KEY=VALUE"):
        recipe_environment(doc)


def test_readme_shows_the_tested_recipe(recipe):
    """The README's "Use with Open WebUI" block is the one the live test runs."""
    from tests.conftest import ROOT

    assert recipe_environment(ROOT / "README.md") == recipe
