"""Everything accounts keep, in one SQLite file under the home folder (HOME/accounts.sqlite).

- Passwords are argon2id hashes (argon2-cffi's PasswordHasher).
- Sessions and API keys are random secrets kept as SHA-256 digests: they carry 256 bits of
  randomness, so a fast digest is enough, and a stolen database holds nothing that signs in.
- Collection owners and shares are keyed by the collection's name and its creation time, so a
  collection dropped and created again under the same name (by the CLI, by hand) starts private,
  without its predecessor's owner or shares.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from embedhub.accounts.errors import AccountExistsError, AccountNotFoundError
from embedhub.accounts.roles import Role, ShareKind, ShareRole
from embedhub.errors import InvalidInputError

ROLES = tuple(Role)
SHARE_ROLES = tuple(ShareRole)
SHARE_KINDS = tuple(ShareKind)
ACCOUNTS_OFF = (
    "accounts are off on this server (a loopback bind with EMBEDHUB_ACCOUNTS=auto, or "
    "EMBEDHUB_ACCOUNTS=off); start it with EMBEDHUB_ACCOUNTS=on to use them"
)
FILE_NAME = "accounts.sqlite"
KEY_PREFIX = "ehk_"
MIN_PASSWORD_LENGTH = 8
#: a key's last use is written at most this often (a busy key would otherwise write every request)
LAST_USED_RESOLUTION = 60.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, role TEXT NOT NULL, password TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS groups (name TEXT PRIMARY KEY, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS members (grp TEXT NOT NULL, user TEXT NOT NULL, PRIMARY KEY (grp, user));
CREATE TABLE IF NOT EXISTS sessions (digest TEXT PRIMARY KEY, user TEXT NOT NULL, csrf TEXT NOT NULL,
    created REAL NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, user TEXT NOT NULL, name TEXT NOT NULL,
    digest TEXT UNIQUE NOT NULL, prefix TEXT NOT NULL, created REAL NOT NULL, last_used REAL);
CREATE TABLE IF NOT EXISTS collections (name TEXT PRIMARY KEY, created_at REAL NOT NULL, owner TEXT);
CREATE TABLE IF NOT EXISTS shares (collection TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    role TEXT NOT NULL, PRIMARY KEY (collection, kind, name));
CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, user TEXT,
    action TEXT NOT NULL, collection TEXT, detail TEXT NOT NULL DEFAULT '', address TEXT);
CREATE INDEX IF NOT EXISTS audit_time ON audit (time);
"""


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    disabled: bool = False
    created: float = 0.0
    groups: frozenset[str] = field(default_factory=frozenset)

    def public(self) -> dict:
        return {"name": self.name, "role": self.role}


@dataclass(frozen=True)
class Share:
    kind: ShareKind
    name: str
    role: ShareRole

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "role": self.role}


@dataclass(frozen=True)
class CollectionAccess:
    """Who owns a collection and whom it is shared with (owner None: nobody, admins only)."""

    owner: str | None = None
    shares: tuple[Share, ...] = ()


def check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInputError(
            f"{what} name {name!r} is not allowed: use 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_role(role: str, allowed: tuple[str, ...] = ROLES) -> str:
    if role not in allowed:
        raise InvalidInputError(f"role {role!r} is not one of {', '.join(allowed)}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(
            f"the password has {len(password)} characters; use at least {MIN_PASSWORD_LENGTH}"
        )
    return password


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class AccountStore:
    """Thread-safe: one connection, one lock (every statement is short)."""

    #: accounts are on (NoAccounts says off)
    enabled = True

    def __init__(self, path: Path, hasher: PasswordHasher | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.hasher = hasher or PasswordHasher()
        self._lock = threading.RLock()
        #: the time sessions expire by (tests move it forward)
        self.clock = time.time
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)
        self._add_missing_columns()
        self._dummy_hash: str | None = None

    def _add_missing_columns(self) -> None:
        """A store made by an older embedhub gains the columns added since (their old rows: NULL)."""
        audit_columns = {row[1] for row in self.db.execute("PRAGMA table_info(audit)")}
        if "address" not in audit_columns:
            self.db.execute("ALTER TABLE audit ADD COLUMN address TEXT")

    @classmethod
    def for_home(cls, home: Path) -> AccountStore:
        return cls(home / FILE_NAME)

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def _query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        with self._lock:
            return self.db.execute(sql, parameters).fetchall()

    def _write(self, sql: str, parameters: tuple = ()) -> int:
        with self._lock:
            return self.db.execute(sql, parameters).rowcount

    # --- users ---------------------------------------------------------------------------------
    def add_user(self, name: str, role: str, password: str) -> User:
        check_name(name, "user")
        check_role(role)
        check_password(password)
        hashed = self.hasher.hash(password)
        try:
            self._write(
                "INSERT INTO users (name, role, password, created) VALUES (?, ?, ?, ?)",
                (name, role, hashed, time.time()),
            )
        except sqlite3.IntegrityError:
            raise AccountExistsError(f"a user named {name!r} already exists") from None
        return self.user(name)

    def _user_from_row(self, row: tuple) -> User:
        name, role, disabled, created = row
        role = Role(role)
        groups = frozenset(g for (g,) in self._query("SELECT grp FROM members WHERE user = ?", (name,)))
        return User(name, role, bool(disabled), created, groups)

    def find_user(self, name: str) -> User | None:
        rows = self._query("SELECT name, role, disabled, created FROM users WHERE name = ?", (name,))
        return self._user_from_row(rows[0]) if rows else None

    def user(self, name: str) -> User:
        found = self.find_user(name)
        if found is None:
            raise AccountNotFoundError(f"no user named {name!r}; `embedhub users list` shows them")
        return found

    def users(self) -> list[User]:
        rows = self._query("SELECT name, role, disabled, created FROM users ORDER BY name")
        return [self._user_from_row(row) for row in rows]

    def has_admin(self) -> bool:
        return bool(self._query("SELECT 1 FROM users WHERE role = 'admin' AND disabled = 0 LIMIT 1"))

    def set_role(self, name: str, role: str) -> User:
        check_role(role)
        self.user(name)
        self._write("UPDATE users SET role = ? WHERE name = ?", (role, name))
        return self.user(name)

    def set_disabled(self, name: str, disabled: bool) -> User:
        """Disabling also ends the user's sessions; their keys stay but are refused while disabled."""
        self.user(name)
        self._write("UPDATE users SET disabled = ? WHERE name = ?", (int(disabled), name))
        if disabled:
            self._write("DELETE FROM sessions WHERE user = ?", (name,))
        return self.user(name)

    def set_password(self, name: str, password: str) -> None:
        """A new password ends every session of the user (a reset after a leak must lock them out)."""
        check_password(password)
        self.user(name)
        self._write("UPDATE users SET password = ? WHERE name = ?", (self.hasher.hash(password), name))
        self._write("DELETE FROM sessions WHERE user = ?", (name,))

    def verify_password(self, name: str, password: str) -> User | None:
        """The user when the password is theirs and they are enabled; None otherwise (as slowly)."""
        rows = self._query("SELECT password FROM users WHERE name = ?", (name,))
        if not rows and self._dummy_hash is None:
            # verifying against this keeps an unknown name as slow as a wrong password
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        stored = rows[0][0] if rows else self._dummy_hash
        try:
            self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if not rows:
            return None
        if self.hasher.check_needs_rehash(stored):
            self._write("UPDATE users SET password = ? WHERE name = ?", (self.hasher.hash(password), name))
        found = self.find_user(name)
        return found if found is not None and not found.disabled else None

    # --- groups --------------------------------------------------------------------------------
    def add_group(self, name: str) -> None:
        check_name(name, "group")
        try:
            self._write("INSERT INTO groups (name, created) VALUES (?, ?)", (name, time.time()))
        except sqlite3.IntegrityError:
            raise AccountExistsError(f"a group named {name!r} already exists") from None

    def _group(self, name: str) -> None:
        if not self._query("SELECT 1 FROM groups WHERE name = ?", (name,)):
            raise AccountNotFoundError(f"no group named {name!r}; `embedhub groups list` shows them")

    def add_member(self, group: str, user: str) -> None:
        self._group(group)
        self.user(user)
        self._write("INSERT OR IGNORE INTO members (grp, user) VALUES (?, ?)", (group, user))

    def remove_member(self, group: str, user: str) -> None:
        self._group(group)
        if not self._write("DELETE FROM members WHERE grp = ? AND user = ?", (group, user)):
            raise AccountNotFoundError(f"{user!r} is not a member of group {group!r}")

    def groups(self) -> list[dict]:
        names = [name for (name,) in self._query("SELECT name FROM groups ORDER BY name")]
        members = "SELECT user FROM members WHERE grp = ? ORDER BY user"
        return [{"name": name, "members": [m for (m,) in self._query(members, (name,))]} for name in names]

    def group_exists(self, name: str) -> bool:
        return bool(self._query("SELECT 1 FROM groups WHERE name = ?", (name,)))

    # --- sessions ------------------------------------------------------------------------------
    def create_session(self, user: str, lifetime: float) -> tuple[str, str]:
        """A new session: (the cookie's secret, the CSRF token the page sends back)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock()
        self._write("DELETE FROM sessions WHERE expires <= ?", (now,))
        self._write(
            "INSERT INTO sessions (digest, user, csrf, created, expires) VALUES (?, ?, ?, ?, ?)",
            (digest(token), user, csrf, now, now + lifetime),
        )
        return token, csrf

    def session(self, token: str) -> tuple[User, str] | None:
        """The session's enabled user and CSRF token; None when unknown, expired or disabled."""
        rows = self._query("SELECT user, csrf, expires FROM sessions WHERE digest = ?", (digest(token),))
        if not rows:
            return None
        name, csrf, expires = rows[0]
        if expires <= self.clock():
            self._write("DELETE FROM sessions WHERE digest = ?", (digest(token),))
            return None
        found = self.find_user(name)
        return (found, csrf) if found is not None and not found.disabled else None

    def delete_session(self, token: str) -> None:
        self._write("DELETE FROM sessions WHERE digest = ?", (digest(token),))

    # --- per-user API keys ---------------------------------------------------------------------
    def create_key(self, user: str, name: str) -> dict:
        """A new key of `user`: its record with the secret (`key`), which is not kept."""
        self.user(user)
        name = (name or "").strip()
        if not name or len(name) > 100:
            raise InvalidInputError("a key needs a name of 1-100 characters (what it is for)")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = secrets.token_hex(8)
        created = time.time()
        self._write(
            "INSERT INTO api_keys (id, user, name, digest, prefix, created) VALUES (?, ?, ?, ?, ?, ?)",
            (key_id, user, name, digest(secret), secret[: len(KEY_PREFIX) + 4], created),
        )
        return {"id": key_id, "name": name, "created": created, "key": secret}

    def keys_of(self, user: str) -> list[dict]:
        rows = self._query(
            "SELECT id, name, created, last_used, prefix FROM api_keys WHERE user = ? ORDER BY created",
            (user,),
        )
        return [dict(zip(("id", "name", "created", "last_used", "prefix"), row, strict=True)) for row in rows]

    def delete_key(self, user: str, key_id: str) -> None:
        if not self._write("DELETE FROM api_keys WHERE id = ? AND user = ?", (key_id, user)):
            raise AccountNotFoundError(f"you have no API key with id {key_id!r}")

    def user_for_key(self, secret: str) -> User | None:
        """The enabled user a key belongs to (its last use noted), or None."""
        if not secret.startswith(KEY_PREFIX):
            return None
        rows = self._query("SELECT id, user, last_used FROM api_keys WHERE digest = ?", (digest(secret),))
        if not rows:
            return None
        key_id, name, last_used = rows[0]
        found = self.find_user(name)
        if found is None or found.disabled:
            return None
        now = time.time()
        if last_used is None or now - last_used > LAST_USED_RESOLUTION:
            self._write("UPDATE api_keys SET last_used = ? WHERE id = ?", (now, key_id))
        return found

    # --- collection owners and shares ----------------------------------------------------------
    def access(self, collection: str, created_at: float) -> CollectionAccess:
        rows = self._query("SELECT created_at, owner FROM collections WHERE name = ?", (collection,))
        if not rows:
            return CollectionAccess()
        if rows[0][0] != created_at:  # an older collection of the same name: its rows are stale
            self.forget_collection(collection)
            return CollectionAccess()
        shares = self._query(
            "SELECT kind, name, role FROM shares WHERE collection = ? ORDER BY kind DESC, name", (collection,)
        )
        found = (Share(ShareKind(kind), name, ShareRole(role)) for kind, name, role in shares)
        return CollectionAccess(rows[0][1], tuple(found))

    def _claim(self, collection: str, created_at: float) -> None:
        """The collection's row, for this incarnation of the name."""
        self.access(collection, created_at)  # drops stale rows
        self._write(
            "INSERT OR IGNORE INTO collections (name, created_at, owner) VALUES (?, ?, NULL)",
            (collection, created_at),
        )

    def set_owner(self, collection: str, created_at: float, owner: str | None) -> None:
        if owner is not None:
            self.user(owner)
        self._claim(collection, created_at)
        self._write("UPDATE collections SET owner = ? WHERE name = ?", (owner, collection))

    def share(self, collection: str, created_at: float, kind: str, name: str, role: str) -> None:
        check_role(kind, SHARE_KINDS)
        check_role(role, SHARE_ROLES)
        if kind == ShareKind.USER:
            self.user(name)
        else:
            self._group(name)
        self._claim(collection, created_at)
        self._write(
            "INSERT OR REPLACE INTO shares (collection, kind, name, role) VALUES (?, ?, ?, ?)",
            (collection, kind, name, role),
        )

    def unshare(self, collection: str, created_at: float, kind: str, name: str) -> None:
        self.access(collection, created_at)
        removed = self._write(
            "DELETE FROM shares WHERE collection = ? AND kind = ? AND name = ?", (collection, kind, name)
        )
        if not removed:
            raise AccountNotFoundError(f"collection {collection!r} is not shared with {kind} {name!r}")

    def forget_collection(self, collection: str) -> None:
        self._write("DELETE FROM shares WHERE collection = ?", (collection,))
        self._write("DELETE FROM collections WHERE name = ?", (collection,))

    # --- audit log -----------------------------------------------------------------------------
    def record(
        self,
        user: str | None,
        action: str,
        collection: str | None = None,
        detail: str = "",
        address: str | None = None,
    ) -> None:
        """`address`: the client's (over HTTP; behind a trusted proxy the real client), else None."""
        self._write(
            "INSERT INTO audit (time, user, action, collection, detail, address) VALUES (?, ?, ?, ?, ?, ?)",
            (time.time(), user, action, collection, detail, address),
        )

    def audit(self, limit: int = 100, before: int | None = None) -> list[dict]:
        """The newest entries first; `before` (an entry's id) pages further back. Ids, not times,
        are the cursor: entries recorded in the same clock tick would be skipped at a page edge,
        and ids keep the order the entries were written in even if the clock steps back."""
        limit = max(1, min(int(limit), 1000))
        rows = self._query(
            "SELECT id, time, user, action, collection, detail, address FROM audit WHERE id < ? "
            "ORDER BY id DESC LIMIT ?",
            (2**63 - 1 if before is None else int(before), limit),
        )
        fields = ("id", "time", "user", "action", "collection", "detail", "address")
        return [dict(zip(fields, row, strict=True)) for row in rows]


class NoAccounts:
    """The account store of a server with accounts off, instead of None: every collection is open
    to the machine's one user (no owner, no shares), nothing is audited, there are no users or
    groups, and what only accounts can do (sharing, owners, sign-in) says accounts are off."""

    enabled = False

    def close(self) -> None:
        pass

    def has_admin(self) -> bool:
        return False

    def access(self, collection: str, created_at: float) -> CollectionAccess:
        return CollectionAccess()

    def forget_collection(self, collection: str) -> None:
        pass

    def record(
        self,
        user: str | None,
        action: str,
        collection: str | None = None,
        detail: str = "",
        address: str | None = None,
    ) -> None:
        pass

    def users(self) -> list[User]:
        return []

    def groups(self) -> list[dict]:
        return []

    def audit(self, limit: int = 100, before: int | None = None) -> list[dict]:
        return []

    def set_owner(self, collection: str, created_at: float, owner: str | None) -> None:
        raise InvalidInputError(ACCOUNTS_OFF)

    def share(self, collection: str, created_at: float, kind: str, name: str, role: str) -> None:
        raise InvalidInputError(ACCOUNTS_OFF)

    def unshare(self, collection: str, created_at: float, kind: str, name: str) -> None:
        raise InvalidInputError(ACCOUNTS_OFF)


#: where accounts are kept: the SQLite store, or nothing when they are off
Accounts = AccountStore | NoAccounts
