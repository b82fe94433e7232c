"""`embedhub serve` (the HTTP server) and `embedhub mcp` (the knowledge base as MCP tools)."""

from __future__ import annotations

import threading
import time
from typing import Annotated

import typer

from embedhub.accounts.store import AccountStore
from embedhub.commands.support import BackendOption, check_backend, user_errors
from embedhub.config import Settings
from embedhub.errors import EmbedhubError, ModelLoadError


@user_errors
def serve(
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Model to serve; repeat for several.")
    ] = None,
    alias: Annotated[
        list[str] | None, typer.Option(help="ALIAS=MODEL: another request name for a served model.")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    api_key: Annotated[
        list[str] | None, typer.Option("--api-key", help="Accepted bearer key; repeat.")
    ] = None,
    allow_public: Annotated[
        bool, typer.Option("--allow-public", help="Allow a non-loopback bind without an API key.")
    ] = False,
    truncate: Annotated[
        bool | None,
        typer.Option(
            "--truncate/--no-truncate",
            help=(
                "Cut over-long inputs to the model's limit (default, counted in usage.truncated_inputs) "
                'or answer 400; a request\'s own "truncate" field wins. Env: EMBEDHUB_TRUNCATE.'
            ),
            show_default=False,
        ),
    ] = None,
    accept_token_ids: Annotated[
        bool,
        typer.Option(
            "--accept-token-ids",
            help=(
                "Accept token-id arrays as input. Only for clients that tokenise with the served "
                "model's own tokenizer: ids from tiktoken (LangChain's default) give wrong vectors. "
                "Env: EMBEDHUB_ACCEPT_TOKEN_IDS=1."
            ),
        ),
    ] = False,
    reranker: Annotated[
        str | None,
        typer.Option(
            "--reranker",
            help="Serve a reranker at /v1/rerank and for kb search: Qwen3-Reranker-0.6B|4B|8B or a "
            "folder (Qwen3-Reranker or cross-encoder). Env: EMBEDHUB_RERANKER.",
            show_default=False,
        ),
    ] = None,
    accounts: Annotated[
        str | None,
        typer.Option(
            "--accounts",
            help="auto (on for a non-loopback --host) | on | off: users sign in and own private "
            "collections. Env: EMBEDHUB_ACCOUNTS.",
            show_default=False,
        ),
    ] = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            help="Address or CIDR of a reverse proxy whose X-Forwarded-For is believed (the client "
            "address for sign-in throttling and the audit log); repeat. Env: EMBEDHUB_TRUSTED_PROXIES.",
            show_default=False,
        ),
    ] = None,
    backend: BackendOption = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Start the OpenAI-compatible embedding server."""
    import uvicorn  # 0.1 s that every other command would pay at start-up

    from embedhub.commands.stopping_server import StoppingServer
    from embedhub.models.loading import resolve
    from embedhub.server.app import create_app
    from embedhub.server.security import check_bind_policy

    updates: dict = {}
    if model:
        updates["serve_models"] = model
    if alias:
        pairs = [item.split("=", 1) for item in alias]
        if any(len(pair) != 2 or not all(pair) for pair in pairs):
            raise EmbedhubError("--alias takes ALIAS=MODEL")
        updates["aliases"] = dict(pairs)
    if host:
        updates["host"] = host
    if port is not None:
        updates["port"] = port
    if api_key:
        updates["api_keys"] = api_key
    if allow_public:
        updates["allow_public"] = True
    if truncate is not None:
        updates["truncate"] = truncate
    if accept_token_ids:
        updates["accept_token_ids"] = True
    if backend:
        updates["backend"] = backend
    if reranker:
        updates["reranker"] = reranker
    if accounts:
        updates["accounts"] = accounts
    if trusted_proxy:
        updates["trusted_proxies"] = trusted_proxy
    # validated (accounts, proxies): a typo fails here with the setting's message
    validate = bool(accounts or trusted_proxy)
    settings = Settings(**updates) if validate else Settings().model_copy(update=updates)
    check_bind_policy(settings)
    _announce_accounts(settings)
    check_backend(settings)
    # Every served model must be findable before the port opens: a missing one fails here with
    # its reason, instead of a server whose /ready answers 503 forever. (Finding is cheap; the
    # weights load in the background.)
    for reference in settings.serve_models or [settings.model]:
        resolve(reference, settings)
    if settings.reranker:
        from embedhub.models.reranker import resolve_reranker

        resolve_reranker(settings.reranker, settings)
    app_instance = create_app(settings)
    server = StoppingServer(
        app_instance.state.stopping,
        uvicorn.Config(
            app_instance,
            host=settings.host,
            port=settings.port,
            log_level=log_level,
            timeout_graceful_shutdown=5,  # running ingest jobs roll back within a batch
            # the app decides whom to believe (settings.trusted_proxies, server/proxy.py); uvicorn's
            # own default would trust X-Forwarded-For from any local process
            proxy_headers=False,
        ),
    )
    hub = app_instance.state.hub
    watcher = threading.Thread(target=_stop_on_load_failure, args=(hub, server), daemon=True)
    watcher.start()
    typer.echo(f"embedhub: serving on http://{settings.host}:{settings.port} (models load in the background)")
    server.run()
    if hub.load_error is not None:
        raise ModelLoadError(f"model loading failed, server stopped: {hub.load_error}")


def _announce_accounts(settings: Settings) -> None:
    """Say whether users sign in, and how to create the first admin when there is none."""
    if not settings.accounts_enabled:
        return
    store = AccountStore.for_home(settings.home)
    try:
        has_admin = store.has_admin()
    finally:
        store.close()
    typer.echo("embedhub: accounts are on: users sign in, collections are private to their owners", err=True)
    if not has_admin:
        typer.echo(
            "embedhub: no admin exists yet; create the first one on this machine with\n"
            "    embedhub users add NAME --role admin\n"
            f"  (with the same EMBEDHUB_HOME, {settings.home}), then sign in at the web UI",
            err=True,
        )


def _stop_on_load_failure(hub, server, poll_seconds: float = 0.2) -> None:
    """A server whose models failed to load would only ever answer 503: stop it instead, so the
    process exits non-zero and a supervisor sees the failure."""
    while not server.should_exit:
        if hub.load_error is not None:
            server.should_exit = True
            return
        if hub.ready:
            return
        time.sleep(poll_seconds)


MCP_PORT = 8001  # beside the embedding server's 8000


@user_errors
def mcp(
    transport: Annotated[
        str, typer.Option(help="stdio (what desktop clients launch) | http (streamable HTTP at /mcp).")
    ] = "stdio",
    host: Annotated[str, typer.Option(help="http: bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="http: port.")] = MCP_PORT,
    api_key: Annotated[
        list[str] | None,
        typer.Option("--api-key", help="http: accepted bearer key; repeat. [env: EMBEDHUB_API_KEYS]"),
    ] = None,
    allow_public: Annotated[
        bool, typer.Option("--allow-public", help="http: allow a non-loopback bind without an API key.")
    ] = False,
    reranker: Annotated[
        str | None,
        typer.Option(
            help="Reranker folder (a cross-encoder or Qwen3-Reranker) for searches with rerank, when "
            "the tools work in-process."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="http: uvicorn log level.")] = "warning",
) -> None:
    """The knowledge base as MCP tools for agents (list_collections, search, fetch_chunk, add,
    delete_document, ask). With `embedhub serve` running for the same EMBEDHUB_HOME the tools go
    through it; otherwise they work in this process."""
    from embedhub.server.security import check_bind_policy

    if transport not in ("stdio", "http"):
        raise EmbedhubError(f"unknown transport {transport!r}; choose stdio or http")
    updates: dict = {"host": host if transport == "http" else "127.0.0.1", "port": port}
    if api_key:
        updates["api_keys"] = api_key
    if allow_public:
        updates["allow_public"] = True
    settings = Settings().model_copy(update=updates)
    if transport == "stdio" or settings.accounts == "auto":
        # stdio is this machine's user; over HTTP, users' keys are checked only when asked for
        # (EMBEDHUB_ACCOUNTS=on): a public MCP bind otherwise still needs a key, as before
        settings = settings.model_copy(update={"accounts": "off"})
    check_bind_policy(settings)
    _announce_accounts(settings)
    try:
        from embedhub.mcp.server import run
    except ModuleNotFoundError as error:
        if error.name != "mcp" and not (error.name or "").startswith("mcp."):
            raise
        raise EmbedhubError("the MCP SDK is not installed: pip install 'mcp>=2.3,<3'") from None
    if transport == "http":
        typer.echo(f"embedhub: MCP over streamable HTTP at http://{host}:{port}/mcp", err=True)
    run(settings, transport, reranker=reranker, log_level=log_level)
