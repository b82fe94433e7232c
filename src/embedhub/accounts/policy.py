"""Who may do what to a collection. One function decides (`level_of`), one enforces (`authorize`),
and the server's routes, the MCP tools and the CLI all call them.

- admin: everything, every collection (also those with no owner: created before accounts were
  on, or by `embedhub kb create` on the server's machine).
- owner: everything on their collection, including sharing and dropping it.
- shared as editor (to the user or a group of theirs): read, search, ask, upload, delete documents.
- shared as viewer: read, search, ask.
- anyone else: the collection does not exist for them (404, the same answer as a missing one).
Creating collections takes the global role admin or editor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from embedhub.accounts.errors import AccessDeniedError
from embedhub.accounts.store import CollectionAccess

#: what an action needs, and which access levels grant it
NEEDS = {
    "view": ("viewer", "editor", "owner", "admin"),
    "edit": ("editor", "owner", "admin"),
    "manage": ("owner", "admin"),
}
_RANK = {"viewer": 1, "editor": 2}
_WHAT = {"edit": "change its documents", "manage": "share or drop it"}


@dataclass(frozen=True)
class Principal:
    """Who makes a request. `kind`: a signed-in or keyed `user`; the shared API keys (`service`,
    admin-equivalent); or `local` (accounts off: the single user of today's loopback server)."""

    kind: str
    name: str | None = None
    role: str = "admin"
    groups: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def label(self) -> str:
        """How the audit log names the caller."""
        return self.name or {"service": "api-key", "local": "local"}.get(self.kind, self.kind)


LOCAL = Principal("local")
SERVICE = Principal("service")


def level_of(principal: Principal, access: CollectionAccess) -> str | None:
    """owner | admin | editor | viewer, or None when the collection is hidden from the caller."""
    if principal.name is not None and access.owner == principal.name:
        return "owner"
    if principal.is_admin:
        return "admin"
    best = None
    for share in access.shares:
        mine = (share.kind == "user" and share.name == principal.name) or (
            share.kind == "group" and share.name in principal.groups
        )
        if mine and (best is None or _RANK[share.role] > _RANK[best]):
            best = share.role
    return best


def authorize(principal: Principal, access: CollectionAccess, need: str, collection: str) -> str | None:
    """The caller's level if it allows `need`; None when the collection is hidden from them (the
    caller answers as for a missing collection); AccessDeniedError when visible but not allowed."""
    level = level_of(principal, access)
    if level is None:
        return None
    if level not in NEEDS[need]:
        raise AccessDeniedError(
            f"you are a {level} of collection {collection!r}: you may not {_WHAT[need]}; ask its owner "
            "or an admin"
        )
    return level


def check_may_create(principal: Principal) -> None:
    if principal.role not in ("admin", "editor"):
        raise AccessDeniedError(
            "viewers may not create collections; an admin can change your role "
            "(`embedhub users role NAME editor`)"
        )
