"""SearchOptions and AskOptions: frozen, checked once when built, and the one source of the limits
the HTTP schemas, the CLI and the MCP tools map onto."""

from __future__ import annotations

import dataclasses

import pytest

from embedhub.errors import InvalidInputError
from embedhub.kb import ask, search
from embedhub.kb.ask import AskOptions
from embedhub.kb.search import SearchOptions
from embedhub.kb.store import SearchFilter
from embedhub.server.schemas import AskRequest, SearchRequest


def test_search_options_are_frozen_and_fill_in_the_defaults():
    options = SearchOptions("cache keys")
    assert options.k == 10 and options.mode == "hybrid" and options.where == SearchFilter()
    assert options.rerank is None and options.rerank_pool == search.RERANK_MINIMUM
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.k = 3  # type: ignore[misc]
    assert options.with_query("disk").query == "disk" and options.query == "cache keys"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"query": "  "}, "the query is empty"),
        ({"mode": "fuzzy"}, "unknown search mode 'fuzzy'"),
        ({"k": 0}, f"k=0 is outside 1..{search.MAX_K}"),
        ({"k": search.MAX_K + 1}, f"outside 1..{search.MAX_K}"),
        ({"fusion": "max"}, "unknown fusion 'max'"),
        ({"dense_weight": 1.5}, "dense_weight=1.5 is outside 0..1"),
        ({"per_document": 0}, "per_document=0 must be at least 1"),
        ({"rerank_candidates": 0}, f"rerank_candidates=0 is outside 1..{search.MAX_RERANK_CANDIDATES}"),
    ],
)
def test_search_options_refuse_what_no_search_could_run(fields, message):
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(".", r"\.")):
        SearchOptions(**{"query": "cache", **fields})


def test_the_http_search_request_maps_onto_search_options_both_ways():
    where = SearchFilter("*.md", ("markdown",), 2, 3)
    options = SearchOptions(
        "cache keys", k=7, mode="dense", where=where, fusion="rrf", dense_weight=0.3, per_document=2,
        rerank=True, rerank_candidates=40, min_score=0.1, exact=True,
    )  # fmt: skip
    assert SearchRequest(**options.request()).options() == options
    assert SearchRequest(query="x").options() == SearchOptions("x", rerank=False)


def test_the_schemas_read_their_limits_from_the_options():
    def limits(model, name: str) -> dict:
        schema = model.model_json_schema()["properties"][name]
        found = {key: schema[key] for key in ("maximum", "maxLength", "maxItems", "default") if key in schema}
        for variant in schema.get("anyOf", ()):
            found.update({key: variant[key] for key in ("maximum",) if key in variant})
        return found

    assert limits(SearchRequest, "query") == {"maxLength": search.MAX_QUERY_CHARS}
    assert limits(SearchRequest, "k")["maximum"] == search.MAX_HTTP_K
    assert limits(SearchRequest, "per_document")["maximum"] == search.MAX_PER_DOCUMENT
    assert limits(SearchRequest, "rerank_candidates")["maximum"] == search.MAX_RERANK_CANDIDATES
    assert limits(AskRequest, "question") == {"maxLength": ask.MAX_QUESTION_CHARS}
    assert limits(AskRequest, "k") == {"maximum": ask.MAX_K, "default": ask.DEFAULT_K}
    assert limits(AskRequest, "history")["maxItems"] == ask.MAX_HISTORY_MESSAGES


def test_ask_options_normalise_once_and_search_with_the_earlier_questions():
    history = (
        {"role": "user", "content": "How is the cache keyed?"},
        {"role": "assistant", "content": "By ids."},
    )
    options = AskOptions("  And on disk?  ", history, k=3, mode="lexical", per_document=1)
    assert options.question == "And on disk?" and options.history == history
    retrieval = options.search_options()
    assert retrieval.query == "How is the cache keyed?\nAnd on disk?"
    assert (retrieval.k, retrieval.mode, retrieval.per_document, retrieval.rerank) == (3, "lexical", 1, None)
    request = AskRequest(
        question="  And on disk?  ", history=list(history), k=3, mode="lexical", per_document=1
    )
    assert request.options() == dataclasses.replace(options, rerank=False)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"question": " "}, "the question is empty"),
        ({"k": ask.MAX_K + 1}, "each passage goes into the prompt"),
        ({"history": ({"role": "system", "content": "x"},)}, "history item 0 is not a chat message"),
        ({"mode": "fuzzy"}, "unknown search mode"),
        ({"per_document": 0}, "per_document=0 must be at least 1"),
    ],
)
def test_ask_options_refuse_what_no_question_could_use(fields, message):
    with pytest.raises(InvalidInputError, match=message):
        AskOptions(**{"question": "why?", **fields})
