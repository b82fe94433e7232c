"""The MCP tools over HTTP with accounts on: each user's own key, and each tool answers with that
user's access (the same policy as the HTTP API): hidden collections are not listed and answer as
missing ones, viewers may search but not change."""

from __future__ import annotations

import anyio
import httpx

from embedhub.accounts.store import AccountStore
from embedhub.kb.collection import KnowledgeBase
from tests.mcp.test_mcp import data, error_text, http_server, make_home

PASSWORD = "correct horse battery"


def test_tools_apply_the_callers_access(tmp_path, tiny_encoder, tiny_model_dir, settings):
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    from mcp import Client

    home = make_home(tmp_path, tiny_encoder, tiny_model_dir, settings)
    store = AccountStore.for_home(home)
    store.add_user("alice", "editor", PASSWORD)
    store.add_user("bob", "viewer", PASSWORD)
    keys = {name: store.create_key(name, "agent")["key"] for name in ("alice", "bob")}
    configured = settings.model_copy(update={"home": home, "accounts": "on"})
    created_at = KnowledgeBase(configured).get("physics").config.created_at
    store.set_owner("physics", created_at, "alice")
    corpus = tmp_path / "notes"

    async def session(name, steps):
        client_http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {keys[name]}"}, timeout=120)
        async with Client(streamable_http_client(url, http_client=client_http)) as client:
            return await steps(client)

    async def alice_adds(client):
        tools = (await client.list_tools()).tools
        assert all("Collections: physics." in tool.description for tool in tools if tool.name == "search")
        assert [
            row["name"] for row in data(await client.call_tool("list_collections", {}))["collections"]
        ] == ["physics"]
        added = data(await client.call_tool("add", {"collection": "physics", "path": str(corpus)}))
        assert added["added"] == 3

    async def bob_is_locked_out(client):
        assert data(await client.call_tool("list_collections", {}))["collections"] == []
        hidden = error_text(
            await client.call_tool("search", {"collection": "physics", "query": "alpha", "mode": "lexical"})
        )
        missing = error_text(
            await client.call_tool("search", {"collection": "nothing", "query": "alpha", "mode": "lexical"})
        )
        assert hidden == missing.replace("nothing", "physics")

    async def bob_reads_but_cannot_change(client):
        found = data(
            await client.call_tool("search", {"collection": "physics", "query": "alpha", "mode": "lexical"})
        )
        assert found["results"]
        refused = error_text(
            await client.call_tool(
                "delete_document", {"collection": "physics", "document": str(corpus / "alpha.md")}
            )
        )
        assert "you are a viewer" in refused

    with http_server(configured) as url:
        assert httpx.post(url, json={}).status_code == 401
        assert httpx.post(url, json={}, headers={"Authorization": "Bearer ehk_unknown"}).status_code == 401
        anyio.run(session, "alice", alice_adds)
        anyio.run(session, "bob", bob_is_locked_out)
        store.share("physics", created_at, "user", "bob", "viewer")
        anyio.run(session, "bob", bob_reads_but_cannot_change)
    actions = [(entry["user"], entry["action"]) for entry in store.audit()]
    assert ("alice", "add_folder") in actions
