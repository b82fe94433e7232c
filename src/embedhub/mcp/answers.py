"""The `ask` tool's answerer: `embedhub.kb.ask` when it is installed, the best evidence otherwise.

Importing that module is the only coupling. Its `ask` function is called with keyword arguments,
each passed when `ask` has a parameter of that name:

    question    the user's question (str); also offered as `query`
    searcher    the collection's searcher: `search(query, *, k, mode, where, ...)` returning
                `SearchResult`s, a `kb.search.Searcher` in-process or the running server's search
                endpoint behind the same method
    k           how many chunks of evidence to retrieve (int)
    where       metadata filters (`kb.store.SearchFilter`)
    settings    `embedhub.config.Settings` (the chat endpoint, timeouts)
    collection  the open `Collection` (in-process only)
    encoder     the collection's `Encoder` (in-process only)

It returns an object with `answer` (str) and `citations` (a list: dicts, dataclasses or pydantic
models, each naming a chunk's file, page and heading), or a dict with those two keys. When the
module is absent, or its `ask` needs a parameter that cannot be given here (say `collection`,
while the running server owns the store), `ask` returns the retrieved evidence with citations and
a note saying why there is no written answer."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Any

ANSWERER_MODULE = "embedhub.kb.ask"


def plain(value: Any) -> Any:
    """A JSON-ready form of a citation or answer part."""
    if isinstance(value, dict | str | int | float | bool) or value is None:
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return {key: item for key, item in vars(value).items() if not key.startswith("_")}


def load_answerer():
    """`embedhub.kb.ask.ask`, or None when that module is not installed."""
    try:
        module = importlib.import_module(ANSWERER_MODULE)
    except ModuleNotFoundError as error:
        if error.name != ANSWERER_MODULE:
            raise  # the module exists but something it imports is missing: a real error
        return None
    return getattr(module, "ask", None)


def ask(question: str, offered: dict[str, Any], evidence: Any) -> dict:
    """The answerer's answer with citations, or `evidence()` with a note saying why not.

    `offered` holds the keyword arguments this caller can give (None: not available here)."""
    answerer = load_answerer()
    if answerer is None:
        return {
            **evidence(),
            "note": f"no answer was written: the answerer ({ANSWERER_MODULE}) is not installed here. "
            "The evidence below is the collection's best match; answer from it and cite [n].",
        }
    parameters = inspect.signature(answerer).parameters
    arguments = {"question": question, "query": question, **offered}
    given = {name: arguments[name] for name in parameters if arguments.get(name) is not None}
    missing = [
        name
        for name, parameter in parameters.items()
        if name not in given
        and parameter.default is inspect.Parameter.empty
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    if missing:
        return {
            **evidence(),
            "note": f"no answer was written: {ANSWERER_MODULE}.ask needs {', '.join(missing)}, which "
            "this server cannot give it here (the collection and its encoder are open only when the "
            "tools work in-process, not through a running `embedhub serve`). The evidence below is "
            "the collection's best match; answer from it and cite [n].",
        }
    result = answerer(**given)
    if isinstance(result, dict):
        answer, citations = result.get("answer"), result.get("citations", [])
    else:
        answer, citations = getattr(result, "answer", None), getattr(result, "citations", [])
    return {"answer": answer, "citations": [plain(citation) for citation in citations or []]}
