"""`embedhub users ...`, `embedhub groups ...` and `embedhub audit`: accounts are managed on the
server's machine, in the same EMBEDHUB_HOME (whoever runs these can read the home folder anyway)."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer

from embedhub.accounts.policy import Principal
from embedhub.accounts.roles import PrincipalKind, Role
from embedhub.accounts.store import AccountStore, check_name, check_role
from embedhub.commands.support import user_errors
from embedhub.config import Settings
from embedhub.errors import InvalidInputError

users_app = typer.Typer(help="User accounts (sign-in, roles) for a shared server.", no_args_is_help=True)
groups_app = typer.Typer(help="Groups of users, to share collections with.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
#: how the audit log names changes made on the command line
CLI_ACTOR = "cli"
#: whoever runs the CLI on the server's machine can read the home folder: an admin
CLI_PRINCIPAL = Principal(PrincipalKind.CLI, None, Role.ADMIN)


def _store():
    return AccountStore.for_home(Settings().home)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise InvalidInputError("--password-stdin read an empty line; pipe the password in")
        return line
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
]


def _user_row(user) -> dict:
    return {
        "name": user.name,
        "role": user.role,
        "disabled": user.disabled,
        "created": user.created,
        "groups": sorted(user.groups),
    }


def _done(as_json: bool, row: dict, line: str) -> None:
    typer.echo(json.dumps(row, ensure_ascii=False) if as_json else line)


@users_app.command("add")
@user_errors
def add_user(
    name: Annotated[str, typer.Argument(help="User name (letters, digits, . _ @ -).")],
    role: Annotated[str, typer.Option("--role", help="admin | editor | viewer")] = "editor",
    password_stdin: PasswordStdin = False,
    as_json: JsonOption = False,
) -> None:
    """Create a user (asks for the password twice unless --password-stdin)."""
    check_name(name, "user")
    check_role(role)
    store = _store()
    user = store.add_user(name, role, _password(password_stdin))
    store.record(CLI_ACTOR, "add_user", None, f"{name} as {role}")
    _done(as_json, _user_row(user), f"user {name} created ({role})")


@users_app.command("list")
@user_errors
def list_users(as_json: JsonOption = False) -> None:
    """Users, their roles, groups and whether they are disabled."""
    users = _store().users()
    if as_json:
        typer.echo(json.dumps({"users": [_user_row(user) for user in users]}, ensure_ascii=False))
        return
    if not users:
        typer.echo("no users yet: `embedhub users add NAME --role admin` creates the first admin")
    for user in users:
        groups = f", groups {', '.join(sorted(user.groups))}" if user.groups else ""
        state = " (disabled)" if user.disabled else ""
        typer.echo(f"{user.name}: {user.role}{groups}{state}")


def _set_disabled(name: str, disabled: bool, as_json: bool) -> None:
    store = _store()
    user = store.set_disabled(name, disabled)
    store.record(CLI_ACTOR, "disable_user" if disabled else "enable_user", None, name)
    state = "disabled (signed out; their keys are refused)" if disabled else "enabled"
    _done(as_json, _user_row(user), f"user {name} {state}")


@users_app.command("disable")
@user_errors
def disable(name: Annotated[str, typer.Argument(help="User name.")], as_json: JsonOption = False) -> None:
    """Stop a user from signing in; ends their sessions, and their keys stop working."""
    _set_disabled(name, True, as_json)


@users_app.command("enable")
@user_errors
def enable(name: Annotated[str, typer.Argument(help="User name.")], as_json: JsonOption = False) -> None:
    """Let a disabled user sign in again (their keys work again)."""
    _set_disabled(name, False, as_json)


@users_app.command("reset-password")
@user_errors
def reset_password(
    name: Annotated[str, typer.Argument(help="User name.")],
    password_stdin: PasswordStdin = False,
    as_json: JsonOption = False,
) -> None:
    """Set a new password (ends the user's sessions)."""
    store = _store()
    store.user(name)
    store.set_password(name, _password(password_stdin))
    store.record(CLI_ACTOR, "reset_password", None, name)
    _done(as_json, _user_row(store.user(name)), f"password of {name} reset; their sessions ended")


@users_app.command("role")
@user_errors
def set_role(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Argument(help="admin | editor | viewer")],
    as_json: JsonOption = False,
) -> None:
    """Change a user's role."""
    store = _store()
    user = store.set_role(name, role)
    store.record(CLI_ACTOR, "set_role", None, f"{name} to {role}")
    _done(as_json, _user_row(user), f"user {name} is now {role}")


@groups_app.command("add")
@user_errors
def add_group(name: Annotated[str, typer.Argument(help="Group name.")], as_json: JsonOption = False) -> None:
    """Create a group."""
    store = _store()
    store.add_group(name)
    store.record(CLI_ACTOR, "add_group", None, name)
    _done(as_json, {"name": name, "members": []}, f"group {name} created")


def _group_row(store, name: str) -> dict:
    return next(group for group in store.groups() if group["name"] == name)


@groups_app.command("add-member")
@user_errors
def add_member(
    group: Annotated[str, typer.Argument(help="Group name.")],
    user: Annotated[str, typer.Argument(help="User name.")],
    as_json: JsonOption = False,
) -> None:
    """Put a user in a group (they get what is shared with the group)."""
    store = _store()
    store.add_member(group, user)
    store.record(CLI_ACTOR, "add_member", None, f"{user} to {group}")
    _done(as_json, _group_row(store, group), f"{user} is a member of {group}")


@groups_app.command("remove-member")
@user_errors
def remove_member(
    group: Annotated[str, typer.Argument(help="Group name.")],
    user: Annotated[str, typer.Argument(help="User name.")],
    as_json: JsonOption = False,
) -> None:
    """Take a user out of a group."""
    store = _store()
    store.remove_member(group, user)
    store.record(CLI_ACTOR, "remove_member", None, f"{user} from {group}")
    _done(as_json, _group_row(store, group), f"{user} is no longer a member of {group}")


@groups_app.command("list")
@user_errors
def list_groups(as_json: JsonOption = False) -> None:
    """Groups and their members."""
    groups = _store().groups()
    if as_json:
        typer.echo(json.dumps({"groups": groups}, ensure_ascii=False))
        return
    if not groups:
        typer.echo("no groups yet: `embedhub groups add GROUP`")
    for group in groups:
        typer.echo(f"{group['name']}: {', '.join(group['members']) or '(no members)'}")


@user_errors
def audit(
    limit: Annotated[int, typer.Option("--limit", "-n", help="Entries shown, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """The audit log: who created, dropped, uploaded to, deleted from, shared and unshared which
    collection, and the changes to users and groups."""
    entries = _store().audit(limit)
    if as_json:
        typer.echo(json.dumps({"entries": entries}, ensure_ascii=False))
        return
    if not entries:
        typer.echo("the audit log is empty")
    for entry in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry["time"]))
        where = f" {entry['collection']}" if entry["collection"] else ""
        detail = f": {entry['detail']}" if entry["detail"] else ""
        origin = f" (from {entry['address']})" if entry.get("address") else ""
        typer.echo(f"{when} {entry['user'] or '-'} {entry['action']}{where}{detail}{origin}")
