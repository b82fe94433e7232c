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
from embedhub.accounts.roles import Level, Need, PrincipalKind, Role, ShareKind, ShareRole
from embedhub.accounts.store import CollectionAccess

#: what an action needs, and which access levels grant it
NEEDS = {
    Need.VIEW: (Level.VIEWER, Level.EDITOR, Level.OWNER, Level.ADMIN),
    Need.EDIT: (Level.EDITOR, Level.OWNER, Level.ADMIN),
    Need.MANAGE: (Level.OWNER, Level.ADMIN),
}
_RANK = {ShareRole.VIEWER: 1, ShareRole.EDITOR: 2}
_WHAT = {Need.EDIT: "change its documents", Need.MANAGE: "share or drop it"}


@dataclass(frozen=True)
class Principal:
    """Who makes a request (see PrincipalKind) and their role; the role is always given: the
    kinds that act as admins (the shared keys, the machine's user, the CLI) say so below."""

    kind: PrincipalKind
    name: str | None
    role: Role
    groups: frozenset[str] = field(default_factory=frozenset)
    #: where the request came from (behind a trusted proxy, the client), for the audit log
    address: str | None = field(default=None, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def label(self) -> str:
        """How the audit log names the caller."""
        return self.name or {PrincipalKind.SERVICE: "api-key", PrincipalKind.LOCAL: "local"}.get(
            self.kind, str(self.kind)
        )


LOCAL = Principal(PrincipalKind.LOCAL, None, Role.ADMIN)
SERVICE = Principal(PrincipalKind.SERVICE, None, Role.ADMIN)


def user_principal(user) -> Principal:
    """A signed-in or keyed user (an accounts.store.User) as a caller."""
    return Principal(PrincipalKind.USER, user.name, user.role, user.groups)


def level_of(principal: Principal, access: CollectionAccess) -> Level | None:
    """owner | admin | editor | viewer, or None when the collection is hidden from the caller."""
    if principal.name is not None and access.owner == principal.name:
        return Level.OWNER
    if principal.is_admin:
        return Level.ADMIN
    best = None
    for share in access.shares:
        mine = (share.kind == ShareKind.USER and share.name == principal.name) or (
            share.kind == ShareKind.GROUP and share.name in principal.groups
        )
        if mine and (best is None or _RANK[share.role] > _RANK[best]):
            best = share.role
    return None if best is None else Level(best)


def authorize(
    principal: Principal, access: CollectionAccess, need: Need | str, collection: str
) -> Level | None:
    """The caller's level if it allows `need`; None when the collection is hidden from them (the
    caller answers as for a missing collection); AccessDeniedError when visible but not allowed."""
    level = level_of(principal, access)
    if level is None:
        return None
    if level not in NEEDS[Need(need)]:
        raise AccessDeniedError(
            f"you are a {level} of collection {collection!r}: you may not {_WHAT[Need(need)]}; ask its owner "
            "or an admin"
        )
    return level


def check_may_create(principal: Principal) -> None:
    if principal.role not in (Role.ADMIN, Role.EDITOR):
        raise AccessDeniedError(
            "viewers may not create collections; an admin can change your role "
            "(`embedhub users role NAME editor`)"
        )
