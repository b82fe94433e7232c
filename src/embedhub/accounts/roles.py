"""The closed sets of the accounts, as str-valued enums: each member equals its word, so the
SQLite rows, the JSON answers and the audit log keep the same plain values."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A user's role across the server."""

    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"


class ShareRole(StrEnum):
    """What a share of a collection grants its user or group."""

    VIEWER = "viewer"
    EDITOR = "editor"


class ShareKind(StrEnum):
    """Whom a collection is shared with."""

    USER = "user"
    GROUP = "group"


class Level(StrEnum):
    """A caller's access to one collection (policy.level_of)."""

    VIEWER = "viewer"
    EDITOR = "editor"
    OWNER = "owner"
    ADMIN = "admin"


class Need(StrEnum):
    """What an action on a collection needs."""

    VIEW = "view"
    EDIT = "edit"
    MANAGE = "manage"


class PrincipalKind(StrEnum):
    """Who makes a request: a signed-in or keyed user; the shared API keys (service); the single
    user of a server with accounts off (local); the command line on the server's machine (cli)."""

    USER = "user"
    SERVICE = "service"
    LOCAL = "local"
    CLI = "cli"
