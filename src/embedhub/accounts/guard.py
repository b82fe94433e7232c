"""The knowledge base as one caller may see it: every route, the event stream, the MCP tools and
the CLI's access commands open collections through `CollectionGuard.open`, so the rule of
policy.py is applied in one place."""

from __future__ import annotations

from embedhub.accounts.errors import AccessDeniedError
from embedhub.accounts.policy import Principal, authorize, check_may_create, level_of
from embedhub.accounts.roles import Level, Need, PrincipalKind, ShareKind
from embedhub.accounts.store import Accounts, CollectionAccess
from embedhub.errors import InvalidInputError
from embedhub.kb.collection import Collection, CollectionNotFoundError, KnowledgeBase


class CollectionGuard:
    """`store` NoAccounts: accounts are off, every caller is the machine's one user and sees
    everything; sharing and owners say accounts are off."""

    def __init__(self, knowledge_base: KnowledgeBase, store: Accounts) -> None:
        self.knowledge_base = knowledge_base
        self.store = store

    def access(self, collection: Collection) -> CollectionAccess:
        return self.store.access(collection.name, collection.config.created_at)

    def level(self, principal: Principal, collection: Collection) -> Level | None:
        return level_of(principal, self.access(collection))

    def visible(self, principal: Principal) -> list[tuple[Collection, Level]]:
        """The collections the caller may see, with their level, by name."""
        seen = []
        for name in self.knowledge_base.names():
            try:
                collection = self.knowledge_base.get(name)
            except CollectionNotFoundError:  # dropped meanwhile
                continue
            level = self.level(principal, collection)
            if level is not None:
                seen.append((collection, level))
        return seen

    def not_found(self, principal: Principal, name: str) -> CollectionNotFoundError:
        """The one answer for a missing collection and a hidden one: it names only visible ones."""
        known = ", ".join(collection.name for collection, _ in self.visible(principal)) or "none yet"
        return CollectionNotFoundError(f"no collection named {name!r}; collections: {known}")

    def open(self, principal: Principal, name: str, need: Need | str = Need.VIEW) -> tuple[Collection, Level]:
        """The collection and the caller's level, if they may `need` (view | edit | manage) it."""
        try:
            collection = self.knowledge_base.get(name)
        except CollectionNotFoundError:
            raise self.not_found(principal, name) from None
        level = authorize(principal, self.access(collection), need, name)
        if level is None:
            raise self.not_found(principal, name)
        return collection, level

    def check_create(self, principal: Principal) -> None:
        check_may_create(principal)

    def created(self, principal: Principal, collection: Collection) -> None:
        """A new collection belongs to the user who created it (shared keys and the CLI: nobody)."""
        if principal.kind == PrincipalKind.USER:
            self.store.set_owner(collection.name, collection.config.created_at, principal.name)
        else:
            self.store.forget_collection(collection.name)
        self.record(principal, "create", collection.name)

    def dropped(self, principal: Principal, name: str) -> None:
        self.store.forget_collection(name)
        self.record(principal, "drop", name)

    def describe(self, principal: Principal, collection: Collection, level: Level | None = None) -> dict:
        """`{"owner", "shares", "you"}`: who owns it, whom it is shared with, the caller's level."""
        access = self.access(collection)
        return {
            "owner": access.owner,
            "shares": [share.to_dict() for share in access.shares],
            "you": level or level_of(principal, access),
        }

    def share(self, principal: Principal, name: str, kind: str, member: str, role: str) -> dict:
        collection, level = self.open(principal, name, Need.MANAGE)
        if kind == ShareKind.USER and member == self.access(collection).owner:
            raise InvalidInputError(f"{member!r} owns collection {name!r} already")
        self.store.share(collection.name, collection.config.created_at, kind, member, role)
        self.record(principal, "share", name, f"{kind} {member} as {role}")
        return self.describe(principal, collection, level)

    def unshare(self, principal: Principal, name: str, kind: str, member: str) -> dict:
        collection, level = self.open(principal, name, Need.MANAGE)
        self.store.unshare(collection.name, collection.config.created_at, kind, member)
        self.record(principal, "unshare", name, f"{kind} {member}")
        return self.describe(principal, collection, level)

    def chown(self, principal: Principal, name: str, owner: str | None) -> dict:
        if not principal.is_admin:
            raise AccessDeniedError("only an admin may give a collection to another owner")
        collection, level = self.open(principal, name, Need.MANAGE)
        self.store.set_owner(collection.name, collection.config.created_at, owner)
        self.record(principal, "chown", name, f"owner {owner}")
        return self.describe(principal, collection, level)

    def record(
        self, principal: Principal, action: str, collection: str | None = None, detail: str = ""
    ) -> None:
        self.store.record(principal.label, action, collection, detail, principal.address)
