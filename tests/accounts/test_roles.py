"""The accounts' closed sets are str-valued enums (the stored and sent values stay the words), a
caller always states its role, and "accounts off" is an object (NoAccounts), not None."""

from __future__ import annotations

import json

import pytest

from embedhub.accounts.guard import CollectionGuard
from embedhub.accounts.policy import LOCAL, SERVICE, Principal, level_of, user_principal
from embedhub.accounts.roles import Level, PrincipalKind, Role, ShareKind, ShareRole
from embedhub.accounts.store import ACCOUNTS_OFF, AccountStore, CollectionAccess, NoAccounts, Share
from embedhub.errors import InvalidInputError
from embedhub.kb.collection import KnowledgeBase
from embedhub.kb.ingest import FileOutcome, FileStatus, IngestReport


def test_the_enums_are_their_words_in_json_and_comparisons():
    assert Role.ADMIN == "admin" and json.dumps({"role": Role.VIEWER}) == '{"role": "viewer"}'
    assert [level.value for level in Level] == ["viewer", "editor", "owner", "admin"]
    assert FileStatus("added") is FileStatus.ADDED
    report = IngestReport([FileOutcome("a", FileStatus.ADDED, 3), FileOutcome("b", FileStatus.FAILED)])
    summary = report.summary()
    assert (summary["added"], summary["failed"], summary["chunks"]) == (1, 1, 3)
    assert json.loads(json.dumps(summary))["added"] == 1


def test_a_principal_has_no_default_role():
    with pytest.raises(TypeError):
        Principal(PrincipalKind.USER, "alice")  # type: ignore[call-arg]
    assert LOCAL.is_admin and SERVICE.is_admin and LOCAL.label == "local" and SERVICE.label == "api-key"


def test_levels_come_from_shares_as_enums(tmp_path):
    store = AccountStore(tmp_path / "accounts.sqlite")
    user = store.add_user("bob", "viewer", "correct horse battery")
    assert user.role is Role.VIEWER and store.user("bob").role is Role.VIEWER
    bob = user_principal(user)
    shared = CollectionAccess("alice", (Share(ShareKind.USER, "bob", ShareRole.EDITOR),))
    assert level_of(bob, shared) is Level.EDITOR
    assert level_of(bob, CollectionAccess("alice")) is None
    store.close()


def test_accounts_off_is_an_object_that_opens_everything_and_refuses_sharing(
    tmp_path, tiny_encoder, tiny_model_dir, settings
):
    knowledge_base = KnowledgeBase(settings.model_copy(update={"home": tmp_path / "home"}))
    knowledge_base.create("notes", tiny_encoder, model_reference=str(tiny_model_dir))
    guard = CollectionGuard(knowledge_base, NoAccounts())
    collection, level = guard.open(LOCAL, "notes", "manage")
    assert level is Level.ADMIN and guard.describe(LOCAL, collection) == {
        "owner": None, "shares": [], "you": "admin",
    }  # fmt: skip
    guard.created(LOCAL, collection)  # nothing to record, nothing to own
    for refused in (
        lambda: guard.share(LOCAL, "notes", "user", "bob", "viewer"),
        lambda: guard.unshare(LOCAL, "notes", "user", "bob"),
        lambda: guard.chown(LOCAL, "notes", "bob"),
    ):
        with pytest.raises(InvalidInputError, match="accounts are off"):
            refused()
    assert ACCOUNTS_OFF.startswith("accounts are off")
    knowledge_base.close()
