"""`embedhub.kb.ask`: answers whose [n] citations point at the chunks that were sent, follow-ups,
the evidence alone without a chat endpoint, and every chat failure as a clear error, fast."""

from __future__ import annotations

import time

import pytest

from embedhub.config import Settings
from embedhub.errors import ConfigurationError, InvalidInputError
from embedhub.kb.ask import (
    DoneEvent,
    ErrorEvent,
    EvidenceEvent,
    TokenEvent,
    ask,
    ask_stream,
    best_sentences,
    cited_numbers,
    retrieval_query,
    without_thinking,
)
from embedhub.kb.chat import ChatEndpointError, ChatSettings, ChatTimeoutError, ChatUnreachableError
from embedhub.kb.ingest import Ingestor
from tests.chat_standin import ERROR_MESSAGE, MODEL, chat_standin, refused_url
from tests.kb.conftest import make_pdf

QUESTION = "What does the nucleus of helium hold?"


@pytest.fixture
def physics(collection, tiny_encoder, tmp_path):
    folder = tmp_path / "physics"
    folder.mkdir()
    (folder / "alpha.md").write_text(
        "# Alpha\n\nThe alpha particle is a helium nucleus. It holds two protons.\n"
    )
    (folder / "beta.md").write_text("# Beta\n\n## Decay\n\nBeta decay emits an electron from a nucleus.\n")
    make_pdf(folder / "helium.pdf", ["Helium is a noble gas.", "A helium nucleus holds two neutrons."])
    report = Ingestor(collection, tiny_encoder).ingest([folder]).summary()
    assert report["added"] == 3
    return collection


def chat(standin, **changes) -> ChatSettings:
    return ChatSettings(url=standin.url, model="qwen3:4b", **changes)


def test_citations_point_at_the_chunks_that_were_sent(physics):
    with chat_standin("Two protons [2], and two neutrons [3][2]. Not [9] or [0].") as standin:
        answer = ask(physics, None, QUESTION, mode="lexical", k=4, chat=chat(standin))
    assert answer.status == "answered" and answer.model == "qwen3:4b" and answer.message is None
    assert answer.answer == "Two protons [2], and two neutrons [3][2]. Not [9] or [0]."
    assert [c.number for c in answer.citations] == [2, 3]  # in order of use, only numbers sent
    second = answer.evidence[1]
    assert second.number == 2
    cited = answer.citations[0]
    assert (cited.path, cited.page_start, cited.chunk_id, cited.doc_id) == (
        second.result.path, second.result.page_start, second.result.chunk_id, second.result.doc_id,
    )  # fmt: skip
    # what the chat received as [2] is that chunk: its file, page and heading, then its text
    request = standin.requests[-1]
    assert request["model"] == "qwen3:4b" and request["stream"] is True
    assert f"[2] {second.where()}\n{second.result.text.strip()}" in standin.last_prompt
    assert standin.last_prompt.endswith(f"Question: {QUESTION}")
    assert "[n]" not in request["messages"][0]["content"] and "[1]" in request["messages"][0]["content"]
    assert "does not answer" in request["messages"][0]["content"]
    pdf_items = [item for item in answer.evidence if item.result.path.endswith("helium.pdf")]
    assert pdf_items and all(item.where().startswith("helium.pdf, page ") for item in pdf_items)


def test_the_stream_gives_evidence_tokens_then_done(physics):
    with chat_standin("A helium nucleus [1].") as standin:
        events = list(ask_stream(physics, None, QUESTION, mode="lexical", chat=chat(standin)))
    assert isinstance(events[0], EvidenceEvent) and isinstance(events[-1], DoneEvent)
    tokens = [event.text for event in events if isinstance(event, TokenEvent)]
    assert len(tokens) >= 3 and "".join(tokens) == "A helium nucleus [1]."
    assert events[-1].data()["citations"][0]["number"] == 1 and "evidence" not in events[-1].data()
    assert events[0].data()["evidence"][0]["number"] == 1


def test_follow_ups_send_the_conversation_and_search_with_the_earlier_question(physics, tiny_encoder):
    history = [
        {"role": "user", "content": "What is an alpha particle?"},
        {"role": "assistant", "content": "A helium nucleus [1]."},
    ]
    with chat_standin("Two protons [1].") as standin:
        answer = ask(physics, tiny_encoder, "What does it hold?", history=history, chat=chat(standin))
    messages = standin.requests[-1]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "What is an alpha particle?"
    assert messages[2]["content"] == "A helium nucleus."  # old markers named evidence no longer sent
    assert messages[3]["content"].endswith("Question: What does it hold?")
    assert answer.retrieval_query == "What is an alpha particle?\nWhat does it hold?"


def test_retrieval_query_keeps_enough_of_the_earlier_questions():
    history = [
        {"role": "user", "content": "How is the cache keyed?"},
        {"role": "assistant", "content": "By token ids [1]."},
        {"role": "user", "content": "and its size?"},
    ]
    assert retrieval_query("what about on disk?", history) == (
        "How is the cache keyed?\nand its size?\nwhat about on disk?"
    )
    long = [{"role": "user", "content": "x" * 1000 + " the end"}]
    assert retrieval_query("and then?", long) == ("x" * 1000 + " the end")[-300:] + "\nand then?"
    assert retrieval_query("first?", []) == "first?"


def test_without_a_chat_endpoint_the_evidence_comes_highlighted(physics):
    for settings in (None, ChatSettings()):
        answer = ask(physics, None, QUESTION, mode="lexical", chat=settings)
        assert answer.status == "no_chat" and answer.answer == "" and answer.citations == []
        for variable in ("EMBEDHUB_CHAT_URL", "EMBEDHUB_CHAT_MODEL", "EMBEDHUB_CHAT_API_KEY"):
            assert variable in answer.message
        assert answer.evidence and all("<mark>" in item.highlights[0] for item in answer.evidence)
    sentences = best_sentences("Cats sleep. The helium nucleus is small. Dogs bark.", "helium nucleus")
    assert sentences == ["The <mark>helium</mark> <mark>nucleus</mark> is small."]


@pytest.mark.parametrize(
    ("mode", "error", "says"),
    [
        ("error", ChatEndpointError, f"answered 500: {ERROR_MESSAGE}"),
        ("hang", ChatTimeoutError, "sent nothing for 0.5 s (EMBEDHUB_CHAT_READ_TIMEOUT)"),
        ("malformed", ChatEndpointError, "malformed stream"),
        ("truncated", ChatEndpointError, "before the answer was complete"),
    ],
)
def test_chat_failures_are_clear_errors_and_never_hang(physics, mode, error, says):
    with chat_standin("Alpha particles are helium nuclei [1].") as standin:
        standin.mode = mode
        started = time.monotonic()
        with pytest.raises(error) as raised:
            ask(physics, None, QUESTION, mode="lexical", chat=chat(standin, read_timeout=0.5))
        assert says in str(raised.value) and standin.url in str(raised.value)
        assert time.monotonic() - started < 5
        events = list(
            ask_stream(physics, None, QUESTION, mode="lexical", chat=chat(standin, read_timeout=0.5))
        )
    assert isinstance(events[0], EvidenceEvent) and events[0].evidence
    assert isinstance(events[-1], ErrorEvent) and says in events[-1].data()["message"]
    assert events[-1].data()["code"] == error.code


def test_an_unreachable_endpoint_and_the_total_timeout(physics):
    with pytest.raises(ChatUnreachableError, match="is the chat server running"):
        ask(physics, None, QUESTION, mode="lexical", chat=ChatSettings(url=refused_url(), model="m"))
    with chat_standin("one two three four five six") as standin:
        standin.chunk_delay = 0.2
        with pytest.raises(ChatTimeoutError, match=r"took longer than 0\.3 s"):
            ask(physics, None, QUESTION, mode="lexical", chat=chat(standin, total_timeout=0.3))


def test_the_model_defaults_to_the_first_one_the_endpoint_lists(physics):
    with chat_standin("Yes [1].") as standin:
        answer = ask(physics, None, QUESTION, mode="lexical", chat=ChatSettings(url=standin.url))
    assert answer.model == MODEL and standin.requests[-1]["model"] == MODEL


def test_bad_questions_and_histories_are_refused_before_anything_is_sent(physics):
    with pytest.raises(InvalidInputError, match="the question is empty"):
        ask(physics, None, "  ", mode="lexical")
    with pytest.raises(InvalidInputError, match="history item 0"):
        ask(physics, None, "why?", mode="lexical", history=[{"role": "system", "content": "x"}])
    with pytest.raises(InvalidInputError, match="k=0 is outside"):
        ask(physics, None, "why?", mode="lexical", k=0)


def test_cited_numbers_reads_the_marker_forms_models_write():
    text = "A [1]. B [2, 3]. C [4-5]. D 【6】. E [99]. F [2]. Year [2024]."
    assert cited_numbers(text, 6) == [1, 2, 3, 4, 5, 6]
    assert cited_numbers("no markers", 3) == []


def test_chat_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("EMBEDHUB_CHAT_URL", "http://127.0.0.1:11434/v1/chat/completions/")
    monkeypatch.setenv("EMBEDHUB_CHAT_MODEL", "qwen3:4b")
    monkeypatch.setenv("EMBEDHUB_CHAT_API_KEY", "secret")
    chat_settings = ChatSettings.from_settings(Settings())
    assert chat_settings.url == "http://127.0.0.1:11434/v1" and chat_settings.model == "qwen3:4b"
    assert chat_settings.api_key == "secret" and "secret" not in repr(chat_settings)
    monkeypatch.setenv("EMBEDHUB_CHAT_URL", "127.0.0.1:11434")
    with pytest.raises(ConfigurationError, match=r"EMBEDHUB_CHAT_URL='127\.0\.0\.1:11434' is invalid"):
        Settings()
    monkeypatch.setenv("EMBEDHUB_CHAT_URL", "")
    assert Settings().chat_url is None


def test_a_leading_think_block_is_not_part_of_the_answer():
    pieces = ["<thi", "nk>The user asks [3]", " and I", " draft.</thi", "nk>\n\nIt is [1]", "."]
    assert "".join(without_thinking(pieces)) == "It is [1]."
    assert "".join(without_thinking(["Plain", " [1]"])) == "Plain [1]"
    assert "".join(without_thinking(["<", "b>bold</b>"])) == "<b>bold</b>"
    assert "".join(without_thinking(["<th"])) == "<th"
