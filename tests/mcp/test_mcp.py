"""`embedhub mcp` with the MCP SDK's own client: over stdio (the command as a desktop client launches
it), over streamable HTTP (with and without an API key), and through a running `embedhub serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx
import pytest
import uvicorn

from embedhub.kb.collection import KnowledgeBase
from tests.chat_standin import chat_standin
from tests.conftest import ROOT
from tests.live_server import free_port

TOOLS = {"list_collections", "search", "fetch_chunk", "add", "delete_document", "ask"}
GUIDE = """# Guide

## Install

Unpack the archive and run the installer from a terminal.

## Configure

Set the ferret option to seven in the settings file.

## Upgrade

Stop the service, replace the binary, start it again.
"""


def make_home(root: Path, tiny_encoder, tiny_model_dir, settings) -> Path:
    """An EMBEDHUB_HOME with an empty collection `physics` on the tiny model, and a folder to add."""
    home = root / "home"
    knowledge_base = KnowledgeBase(settings.model_copy(update={"home": home}))
    knowledge_base.create(
        "physics", tiny_encoder, model_reference=str(tiny_model_dir), dimensions=32, chunk_tokens=24,
        chunk_overlap=0,
    )  # fmt: skip
    knowledge_base.close()
    corpus = root / "notes"
    corpus.mkdir()
    (corpus / "alpha.md").write_text("# Alpha\n\nThe alpha particle is a helium nucleus.\n")
    (corpus / "beta.txt").write_text("Beta decay emits an electron.")
    (corpus / "guide.md").write_text(GUIDE)
    (corpus / "broken.pdf").write_text("not a pdf")
    return home


def child_environment(home: Path, **extra: str) -> dict[str, str]:
    return {
        "EMBEDHUB_HOME": str(home), "EMBEDHUB_BACKEND": "torch", "EMBEDHUB_THREADS": "1",
        "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT / "src"), **extra,
    }  # fmt: skip


def data(result) -> dict:
    """A successful tool result's JSON."""
    assert not result.is_error, result.content[0].text
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


def error_text(result) -> str:
    assert result.is_error, f"expected a tool error, got {result.content}"
    return result.content[0].text


async def exercise(client, corpus: Path) -> None:
    """The user path every transport must carry: tools, add, search, fetch, delete, errors."""
    listed = (await client.list_tools()).tools
    assert {tool.name for tool in listed} == TOOLS
    for tool in listed:
        assert tool.description and "Collections: physics." in tool.description, tool.name
    search_schema = next(tool for tool in listed if tool.name == "search").input_schema["properties"]
    assert {"collection", "query", "mode", "k", "path_glob", "file_types", "per_document", "rerank"} <= set(
        search_schema
    )
    assert search_schema["mode"]["enum"] == ["hybrid", "dense", "lexical"]

    collections = data(await client.call_tool("list_collections", {}))
    assert collections["collections"][0]["name"] == "physics"
    assert collections["collections"][0]["documents"] == 0

    added = data(await client.call_tool("add", {"collection": "physics", "path": str(corpus)}))
    assert (added["added"], added["failed"]) == (3, 1)
    assert added["failures"][0]["path"].endswith("broken.pdf") and added["failures"][0]["error"]
    again = data(await client.call_tool("add", {"collection": "physics", "path": str(corpus)}))
    assert (again["added"], again["skipped"]) == (0, 3)

    found = data(
        await client.call_tool(
            "search", {"collection": "physics", "query": "helium nucleus", "mode": "lexical", "k": 3}
        )
    )
    best = found["results"][0]
    assert "helium nucleus" in best["text"]
    assert best["citation"]["file"] == "alpha.md" and best["citation"]["heading_path"] == ["Alpha"]
    assert best["citation"]["label"] == "alpha.md | Alpha"
    only_text = data(
        await client.call_tool(
            "search",
            {"collection": "physics", "query": "electron", "mode": "lexical", "file_types": ["markdown"]},
        )
    )
    assert all(result["citation"]["file"] != "beta.txt" for result in only_text["results"])

    ferret = data(
        await client.call_tool("search", {"collection": "physics", "query": "ferret", "mode": "lexical"})
    )["results"][0]
    assert ferret["citation"]["heading_path"] == ["Guide", "Configure"]
    around = data(
        await client.call_tool("fetch_chunk", {"collection": "physics", "chunk_id": ferret["chunk_id"]})
    )
    assert "ferret option" in around["chunk"]["text"]
    assert around["citation"]["heading_path"] == ["Guide", "Configure"]
    assert [c["citation"]["heading_path"][-1] for c in around["before"]] == ["Install"]
    assert [c["citation"]["heading_path"][-1] for c in around["after"]] == ["Upgrade"]
    assert around["document"]["path"].endswith("guide.md")

    deleted = data(
        await client.call_tool(
            "delete_document", {"collection": "physics", "document": str(corpus / "alpha.md")}
        )
    )
    assert [Path(item["path"]).name for item in deleted["deleted"]] == ["alpha.md"]
    gone = data(
        await client.call_tool("search", {"collection": "physics", "query": "helium", "mode": "lexical"})
    )
    assert all(result["citation"]["file"] != "alpha.md" for result in gone["results"])

    unknown = error_text(await client.call_tool("search", {"collection": "nope", "query": "x"}))
    assert "no collection named 'nope'" in unknown and "physics" in unknown
    missing = error_text(
        await client.call_tool("add", {"collection": "physics", "path": str(corpus / "absent")})
    )
    assert "does not exist" in missing and "absent" in missing
    relative = error_text(await client.call_tool("add", {"collection": "physics", "path": "notes"}))
    assert "relative path" in relative and "absolute" in relative
    bad_chunk = error_text(
        await client.call_tool("fetch_chunk", {"collection": "physics", "chunk_id": "not-a-chunk"})
    )
    assert "not a chunk id" in bad_chunk
    no_document = error_text(
        await client.call_tool("delete_document", {"collection": "physics", "document": "0123abc"})
    )
    assert "no document" in no_document
    bad_mode = await client.call_tool("search", {"collection": "physics", "query": "x", "mode": "fuzzy"})
    assert bad_mode.is_error


def test_stdio_transport(tmp_path, tiny_encoder, tiny_model_dir, settings):
    """`embedhub mcp` as a desktop client starts it: a child process speaking MCP on stdin/stdout."""
    from mcp.client.stdio import StdioServerParameters

    from mcp import Client

    home = make_home(tmp_path, tiny_encoder, tiny_model_dir, settings)
    parameters = StdioServerParameters(
        command=sys.executable, args=["-m", "embedhub.cli", "mcp"], env=child_environment(home), cwd=ROOT
    )

    async def scenario():
        with anyio.fail_after(240):
            await conversation()

    async def conversation():
        async with Client(parameters, read_timeout_seconds=120) as client:
            await exercise(client, tmp_path / "notes")
            not_reranked = data(
                await client.call_tool(
                    "search", {"collection": "physics", "query": "ferret", "mode": "lexical", "rerank": True}
                )
            )
            assert not_reranked["reranked"] is False and "no reranker" in not_reranked["note"]
            asked = data(
                await client.call_tool("ask", {"collection": "physics", "question": "ferret option?"})
            )
            # no chat endpoint configured: the ranked evidence, and how to configure one
            assert asked["status"] == "no_chat" and "EMBEDHUB_CHAT_URL" in asked["message"]
            assert asked["evidence"] and asked["evidence"][0]["number"] == 1
            assert asked["evidence"][0]["path"].endswith(".md") and asked["evidence"][0]["highlights"]

    anyio.run(scenario)


@contextmanager
def http_server(settings):
    """`embedhub mcp --transport http` in a thread: the same app on uvicorn, on a free port."""
    from embedhub.mcp.server import build_server, http_app

    port = free_port()
    settings = settings.model_copy(update={"host": "127.0.0.1", "port": port})
    server = uvicorn.Server(
        uvicorn.Config(
            http_app(build_server(settings), settings), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def wait_until_answering(url: str, process: subprocess.Popen | None = None, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process is None or process.poll() is None, "the server exited early"
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def test_streamable_http_transport(tmp_path, tiny_encoder, tiny_model_dir, settings):
    """`embedhub mcp --transport http --port N`, as the README shows it, with the SDK's client."""
    from mcp import Client

    home = make_home(tmp_path, tiny_encoder, tiny_model_dir, settings)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "embedhub.cli", "mcp", "--transport", "http", "--port", str(port)],
        env={**os.environ, **child_environment(home)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/mcp"

    async def scenario():
        async with Client(url, read_timeout_seconds=120) as client:
            await exercise(client, tmp_path / "notes")

    try:
        wait_until_answering(url, process)
        anyio.run(scenario)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_streamable_http_requires_the_api_key(tmp_path, settings):
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    from mcp import Client

    keyed = settings.model_copy(update={"home": tmp_path / "home", "api_keys": ["sesame"]})

    async def listed(url, headers):
        client_http = httpx2.AsyncClient(headers=headers)
        async with Client(streamable_http_client(url, http_client=client_http)) as client:
            return (await client.list_tools()).tools

    with http_server(keyed) as url:
        refused = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert refused.status_code == 401 and "missing API key" in refused.text
        wrong = httpx.post(url, json={}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        tools = anyio.run(listed, url, {"Authorization": "Bearer sesame"})
        assert {tool.name for tool in tools} == TOOLS
        assert all("No collection exists yet" in tool.description for tool in tools)


def test_public_bind_needs_a_key(tmp_path):
    from typer.testing import CliRunner

    from embedhub.cli import app

    result = CliRunner().invoke(
        app, ["mcp", "--transport", "http", "--host", "0.0.0.0"], env={"EMBEDHUB_HOME": str(tmp_path)}
    )
    assert result.exit_code == 2 and "without an API key" in result.stderr


def test_ask_answers_with_citations_from_the_chat_endpoint(tmp_path, tiny_encoder, tiny_model_dir, settings):
    """In-process, `ask` is embedhub's answerer with the chat endpoint of the MCP server's settings:
    the answer's [1] maps to the chunk sent as [1], with its file and heading."""
    from embedhub.mcp.server import build_server
    from mcp import Client

    home = make_home(tmp_path, tiny_encoder, tiny_model_dir, settings)
    with chat_standin("Set it to seven [1].") as standin:
        configured = settings.model_copy(update={"home": home, "chat_url": standin.url})
        server = build_server(configured)

        async def scenario():
            async with Client(server) as client:
                data(
                    await client.call_tool("add", {"collection": "physics", "path": str(tmp_path / "notes")})
                )
                return data(
                    await client.call_tool(
                        "ask", {"collection": "physics", "question": "ferret option", "k": 2}
                    )
                )

        answered = anyio.run(scenario)
        prompt = standin.last_prompt
    assert answered["status"] == "answered" and answered["answer"] == "Set it to seven [1]."
    assert answered["via"] == "in-process" and len(answered["evidence"]) == 2
    (cited,) = answered["citations"]
    first = answered["evidence"][0]
    assert cited["number"] == 1 and cited["chunk_id"] == first["chunk_id"]
    assert cited["path"].endswith(".md") and cited["heading_path"] == first["heading_path"]
    assert "ferret option" in prompt and first["text"][:40] in prompt


@pytest.fixture
def running_server(tmp_path, tiny_encoder, tiny_model_dir, settings):
    """`embedhub serve` for a home with the `physics` collection."""
    home = make_home(tmp_path, tiny_encoder, tiny_model_dir, settings)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "embedhub.cli", "serve", "--model", str(tiny_model_dir), "--port", str(port)],
        env={**os.environ, **child_environment(home)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        assert (home / "server.json").exists()
        yield home
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_tools_go_through_a_running_server(running_server, tmp_path, settings):
    """With `embedhub serve` running for the home, every tool goes through its HTTP API (adds are
    its ingestion jobs), and nothing opens the store beside it."""
    from embedhub.mcp.server import build_server
    from mcp import Client

    server = build_server(settings.model_copy(update={"home": running_server}))

    async def scenario():
        async with Client(server) as client:
            listed = data(await client.call_tool("list_collections", {}))
            assert listed["via"] == "embedhub serve"
            await exercise(client, tmp_path / "notes")
            asked = data(await client.call_tool("ask", {"collection": "physics", "question": "ferret"}))
            # the server's ask route answered: no chat endpoint is configured there
            assert asked["via"] == "embedhub serve" and asked["status"] == "no_chat"

    anyio.run(scenario)
    assert server.access.local._encoders == {}  # no model was loaded here


def test_search_reranks_with_the_configured_reranker(
    tmp_path, tiny_encoder, tiny_model_dir, settings, monkeypatch
):
    """`embedhub mcp --reranker FOLDER`: rerank=true puts the reranker's order first and says so;
    rerank=false leaves the fused order."""
    from embedhub.mcp.server import build_server
    from embedhub.models import reranker as rerankers
    from mcp import Client

    class PreferUpgrades:
        name = "prefer-upgrades"

        def score(self, query, passages):
            return [float("binary" in passage) for passage in passages]

    loaded = []
    monkeypatch.setattr(
        rerankers, "load_reranker", lambda folder, settings: loaded.append(folder) or PreferUpgrades()
    )
    home = make_home(tmp_path, tiny_encoder, tiny_model_dir, settings)
    server = build_server(settings.model_copy(update={"home": home}), reranker="/models/a-reranker")
    query = {"collection": "physics", "query": "ferret option service", "mode": "lexical", "k": 2}

    async def scenario():
        async with Client(server) as client:
            data(await client.call_tool("add", {"collection": "physics", "path": str(tmp_path / "notes")}))
            plain = data(await client.call_tool("search", query))
            reranked = data(await client.call_tool("search", {**query, "rerank": True}))
        return plain, reranked

    plain, reranked = anyio.run(scenario)
    assert plain["reranked"] is False and "note" not in plain
    assert plain["results"][0]["citation"]["heading_path"] == ["Guide", "Configure"]
    assert reranked["reranked"] is True and "note" not in reranked
    assert reranked["results"][0]["citation"]["heading_path"] == ["Guide", "Upgrade"]
    assert "rerank:prefer-upgrades" in reranked["results"][0]["retrievers"]
    assert loaded == ["/models/a-reranker"]
