"""`embedhub mcp`: the knowledge-base tools on the official MCP SDK, over stdio (what desktop
clients launch) or streamable HTTP at http://HOST:PORT/mcp.

Over HTTP the rule of `embedhub serve` applies: bound to loopback by default, a non-loopback bind
refused without an API key (unless allowed explicitly), and with keys configured every request
must carry `Authorization: Bearer KEY`."""

from __future__ import annotations

import contextlib
import inspect
import json
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import ToolAnnotations

from embedhub.access.choice import Access
from embedhub.access.contract import CALLER, Caller
from embedhub.accounts.errors import AuthenticationError
from embedhub.accounts.keys import (
    INVALID_KEY,
    MISSING_KEY,
    InvalidKeyError,
    MissingKeyError,
    bearer_token,
    check_shared_key,
    matches_api_key,
)
from embedhub.accounts.policy import SERVICE, user_principal
from embedhub.accounts.store import AccountStore, NoAccounts
from embedhub.config import Settings
from embedhub.errors import EmbedhubError
from embedhub.mcp.tools import COLLECTION_TOOLS, KnowledgeBaseTools

HTTP_PATH = "/mcp"
#: where the HTTP middleware leaves the caller in the request's state
CALLER_STATE = "embedhub_caller"
INSTRUCTIONS = (
    "embedhub's knowledge base: collections of documents (PDF, DOCX, Markdown, HTML, text, code) "
    "chunked and indexed for hybrid search. Call list_collections, then search (or ask) a collection; "
    "use fetch_chunk to read around a result, and cite results by their citation label (file, "
    "page, heading)."
)
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
TOOL_ANNOTATIONS = {
    "list_collections": READ_ONLY,
    "search": READ_ONLY,
    "fetch_chunk": READ_ONLY,
    "ask": ToolAnnotations(read_only_hint=True, destructive_hint=False),
    "add": ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
    ),
    "delete_document": ToolAnnotations(
        read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
    ),
}


class KnowledgeBaseServer(MCPServer):
    """An MCPServer whose tool descriptions name the collections that exist when the tools are
    listed, and whose tools report embedhub's own errors (what was wrong, what to do) to the agent
    as tool errors."""

    def __init__(self, access: Access) -> None:
        from embedhub import __version__

        super().__init__(name="embedhub", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")
        self.access = access

    def collections_line(self) -> str:
        try:
            names = self.access.current().collection_names()
        except EmbedhubError as error:
            return f"(The collections could not be listed: {error})"
        if not names:
            return "No collection exists yet: create one with `embedhub kb create NAME`, then use add."
        return "Collections: " + ", ".join(names) + "."

    async def _handle_list_tools(self, ctx: Any, params: Any) -> Any:
        with _as_caller(getattr(ctx, "request", None)):
            return await super()._handle_list_tools(ctx, params)

    async def list_tools(self) -> list[Any]:
        tools = await super().list_tools()
        line = await anyio.to_thread.run_sync(self.collections_line)
        return [
            tool.model_copy(update={"description": f"{tool.description}\n\n{line}"})
            if tool.name in COLLECTION_TOOLS
            else tool
            for tool in tools
        ]

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        request = None
        if context is not None:
            with contextlib.suppress(ValueError):  # no request: called outside a session
                request = context.request_context.request
        try:
            with _as_caller(request):
                return await super().call_tool(name, arguments, context)
        except UnexpectedToolError as error:
            if isinstance(error.__cause__, EmbedhubError):
                raise ToolError(str(error.__cause__)) from error.__cause__
            raise


@contextlib.contextmanager
def _as_caller(request: Any):
    """Run a request's tools as the caller the HTTP middleware identified (none on stdio)."""
    state = getattr(request, "scope", {}).get("state") or {} if request is not None else {}
    token = CALLER.set(state.get(CALLER_STATE))
    try:
        yield
    finally:
        CALLER.reset(token)


def build_server(settings: Settings, reranker: str | None = None) -> KnowledgeBaseServer:
    access = Access(settings, reranker)
    server = KnowledgeBaseServer(access)
    tools = KnowledgeBaseTools(access)
    for name, hints in TOOL_ANNOTATIONS.items():
        function = getattr(tools, name)
        description = " ".join(inspect.cleandoc(function.__doc__).split())
        server.add_tool(function, name=name, description=description, annotations=hints)
    return server


class RequireApiKey:
    """ASGI middleware: every HTTP request carries one of the configured keys (as the server's), or
    with accounts on (EMBEDHUB_ACCOUNTS=on) a user's own key; the caller is kept in the request's
    state for the tools (`KnowledgeBaseServer` hands it to them)."""

    def __init__(self, app, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.store = AccountStore.for_home(settings.home) if settings.accounts_enabled else NoAccounts()

    def identify(self, authorization: str):
        """The caller (None with accounts off); AuthenticationError when the key is missing or wrong."""
        if not self.store.enabled:
            check_shared_key(self.settings, authorization)
            return None
        token = bearer_token(authorization)
        if token is None:
            raise MissingKeyError(f"{MISSING_KEY} (your own key)")
        if matches_api_key(self.settings, token):
            return Caller(SERVICE, token, self.store)
        user = self.store.user_for_key(token)
        if user is None:
            raise InvalidKeyError(f"{INVALID_KEY} (unknown, revoked, or its user is disabled)")
        return Caller(user_principal(user), token, self.store)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            from starlette.responses import Response

            headers = dict(scope.get("headers") or ())
            try:
                caller = await anyio.to_thread.run_sync(
                    self.identify, headers.get(b"authorization", b"").decode("latin-1")
                )
            except AuthenticationError as error:
                # the OpenAI error format the HTTP server answers with
                error_ = {
                    "message": str(error),
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
                body = json.dumps({"error": error_}, ensure_ascii=False).encode()
                await Response(body, status_code=401, media_type="application/json")(scope, receive, send)
                return
            scope.setdefault("state", {})[CALLER_STATE] = caller
        await self.app(scope, receive, send)


def http_app(server: KnowledgeBaseServer, settings: Settings):
    """The streamable HTTP app at HTTP_PATH (behind the key check when keys are configured or
    accounts are on)."""
    app = server.streamable_http_app(streamable_http_path=HTTP_PATH, host=settings.host)
    return RequireApiKey(app, settings) if settings.api_keys or settings.accounts_enabled else app


def run(settings: Settings, transport: str, reranker: str | None = None, log_level: str = "warning") -> None:
    server = build_server(settings, reranker)
    if transport == "stdio":
        server.run("stdio")
        return
    import uvicorn

    uvicorn.run(http_app(server, settings), host=settings.host, port=settings.port, log_level=log_level)
