"""How `kb search` and `kb ask` reach the knowledge base (embedhub.access), and what they say about
it on stderr: through the running `embedhub serve` for this home when one answers (with
`--api-key` / EMBEDHUB_API_KEY as the caller's key), otherwise in this process. Every line tells
what happened: a server that refused the key or was still loading is named as the reason the
model loaded here, and only with no server running does it say that one would skip the load.

`Change` is the same choice for the commands that create, change or describe collections
(`kb create`, `add`, `list`, `info`, `remove`, `drop`, `access`, `share`, `unshare`), with one
difference: a server that refuses the key is an error, never a reason to act here, where nobody's
access would apply.

Imported by the `kb` commands that reach collections: it imports the search code (numpy, about
0.25 s)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from embedhub.access.client import ServerClient, ServerRequestError, ServerUnavailableError
from embedhub.access.contract import KnowledgeBaseAccess
from embedhub.access.discovery import probe_server
from embedhub.access.local import LocalKnowledgeBase
from embedhub.access.served import ServedKnowledgeBase
from embedhub.config import Settings
from embedhub.errors import EmbedhubError

T = TypeVar("T")
NO_SERVER = "with `embedhub serve` running for this home, the next one skips that"


class Reach:
    """Runs one call against the knowledge base, through the server or here (see the module)."""

    def __init__(
        self,
        settings: Settings,
        *,
        what: str,
        rerank: bool,
        reranker: str | None,
        here_because: str | None,
        say: Callable[[str], None],
    ) -> None:
        #: `what` names the call in messages ("search", "question"); `here_because` is the flag
        #: that asks for this process (--local, --reranker, --backend), None to look for a server
        self.settings = settings
        self.what = what
        self.rerank = rerank
        self.reranker = reranker
        self.here_because = here_because
        self.say = say

    def run(self, call: Callable[[KnowledgeBaseAccess], T]) -> T:
        if self.here_because is not None:
            return self._here(call, f"loaded here as {self.here_because} asks")
        probe = probe_server(self.settings)
        if probe.refused:
            return self._here(
                call,
                f"the embedhub serve for this home ({probe.address}) refused this command's key, so this "
                f"{self.what} ran here as this machine's user; to go through it, give your own key with "
                "--api-key or EMBEDHUB_API_KEY",
                always=True,
            )
        if probe.url is None:
            return self._here(call, NO_SERVER)
        try:
            result = call(ServedKnowledgeBase(ServerClient(probe.url, self.settings)))
        except ServerUnavailableError as error:
            return self._here(call, f"{error}, so this {self.what} ran here", always=True)
        if self.settings.api_key:
            self.say(
                f"embedhub: this {self.what} went through embedhub serve at {probe.url} with your API key"
            )
        return result

    def _here(self, call: Callable[[KnowledgeBaseAccess], T], reason: str, always: bool = False) -> T:
        """`call` in this process; `reason` is said with the model's load time, or alone when no
        model loaded (a lexical search) and it names a server that was there (`always`)."""
        reference = self.reranker or self.settings.reranker
        if self.rerank and reference is None:
            raise EmbedhubError(
                "--rerank needs a reranker: no `embedhub serve` for this home answered, so name one to "
                "load here with --reranker Qwen3-Reranker-0.6B (or a folder), or set EMBEDHUB_RERANKER"
            )
        said = []

        def loaded(kind: str, name: str, seconds: float) -> None:
            if kind == "reranker":
                self.say(f"embedhub: loaded reranker {name} in {seconds:.1f}s")
            else:
                self.say(f"embedhub: loaded {name} in {seconds:.1f}s for this {self.what}; {reason}")
                said.append(reason)

        result = call(LocalKnowledgeBase(self.settings, reference if self.rerank else None, loaded))
        if always and not said:
            self.say(f"embedhub: {reason}")
        return result


KEY_HINT = (
    "give a user's key with --api-key or EMBEDHUB_API_KEY (a user makes one signed in to the web UI, "
    "or with POST /v1/auth/keys)"
)


class Change:
    """Runs one `kb` command that changes or describes collections: through the running server
    for this home when there is one (with the caller's key, so the server applies that user's
    role and collection access), in this process otherwise; see the module docstring."""

    def __init__(self, settings: Settings, *, what: str, say: Callable[[str], None]) -> None:
        #: `what` names the command in messages ("kb create")
        self.settings = settings
        self.what = what
        self.say = say

    def run(self, call: Callable[[KnowledgeBaseAccess], T]) -> T:
        probe = probe_server(self.settings)
        if probe.refused:
            raise self._refused(probe.address, probe.status, None)
        if probe.url is None:
            result = call(LocalKnowledgeBase(self.settings))
            if self.settings.accounts_enabled:
                self.say(
                    f"embedhub: no embedhub serve runs for this home, so `{self.what}` ran here as this "
                    "machine's user (accounts apply through the server)"
                )
            return result
        try:
            result = call(ServedKnowledgeBase(ServerClient(probe.url, self.settings)))
        except ServerRequestError as error:
            if error.status in (401, 403):
                raise self._refused(probe.url, error.status, str(error)) from None
            raise
        key = " with your API key" if self.settings.api_key else ""
        self.say(f"embedhub: `{self.what}` went through embedhub serve at {probe.url}{key}")
        return result

    def _refused(self, address: str | None, status: int | None, message: str | None) -> EmbedhubError:
        """What to say when the server said no: no key, a key it does not know (401), or a user
        who may not do this (403, with the server's reason naming the permission)."""
        server = f"the embedhub serve for this home ({address})"
        if status == 403:
            reason = f": {message}" if message else ""
            return EmbedhubError(f"{server} refused `{self.what}` for your key (403 forbidden){reason}")
        if not self.settings.api_key:
            return EmbedhubError(
                f"{server} has accounts on and `{self.what}` gave it no user key, so nothing was done; "
                + KEY_HINT
            )
        reason = f" ({message})" if message else " (unknown, revoked, or its user is disabled)"
        return EmbedhubError(
            f"{server} refused your API key (401){reason}, so `{self.what}` did nothing; " + KEY_HINT
        )
