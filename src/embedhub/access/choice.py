"""Which way a tool reaches the knowledge base, chosen again at every call: through a running
`embedhub serve` for the same EMBEDHUB_HOME (found by discovery.py) with the caller's key, or in
this process. Starting or stopping `embedhub serve` while a tool runs takes effect at its next
call."""

from __future__ import annotations

from embedhub.access.client import ServerClient
from embedhub.access.contract import CALLER, KnowledgeBaseAccess
from embedhub.access.local import LocalKnowledgeBase, OnLoad
from embedhub.access.served import ServedKnowledgeBase
from embedhub.config import Settings
from embedhub.errors import EmbedhubError


class Access:
    """The knowledge base as the tools see it at each call (see the module docstring)."""

    def __init__(
        self, settings: Settings, reranker: str | None = None, on_load: OnLoad | None = None
    ) -> None:
        self.settings = settings
        self.local = LocalKnowledgeBase(settings, reranker, on_load)

    def current(self) -> KnowledgeBaseAccess:
        caller = CALLER.get()
        client = ServerClient.for_home(self.settings, token=caller.token if caller is not None else None)
        if client is None:
            return self.local
        if caller is not None and not client.call("GET", "/v1/auth/me").get("accounts"):
            # that server would let any key through: users' access could not apply
            raise EmbedhubError(
                "the embedhub serve running for this home has accounts off, so it cannot apply your "
                "access; start it with EMBEDHUB_ACCOUNTS=on (or bind it publicly)"
            )
        return ServedKnowledgeBase(client)
