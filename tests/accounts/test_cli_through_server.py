"""With accounts on and `embedhub serve` running for the home, the `kb` commands that create,
change or describe collections go through the server with the user's key: the server applies
that user's role and collection access (a viewer is refused, and the message names the
permission), records the user in its audit log, and nothing runs in the CLI's process."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from embedhub.access import local
from embedhub.cli import app


@pytest.fixture
def served_home(request, tmp_path, tiny_model_dir, tiny_encoder, settings, monkeypatch):
    """A home with two users (alice an editor, bob a viewer) and its server running, accounts on
    (with the settings of an indirect parameter, if any)."""
    from embedhub.accounts.store import AccountStore
    from embedhub.server.app import create_app
    from tests.live_server import free_port, live_server

    home = tmp_path / "home"
    monkeypatch.setenv("EMBEDHUB_HOME", str(home))
    monkeypatch.delenv("EMBEDHUB_API_KEY", raising=False)
    store = AccountStore.for_home(home)
    store.add_user("alice", "editor", "correct horse battery")
    store.add_user("bob", "viewer", "correct horse battery")
    keys = {name: store.create_key(name, "cli")["key"] for name in ("alice", "bob")}
    updates = {"home": home, "accounts": "on", "port": free_port(), **getattr(request, "param", {})}
    configured = settings.model_copy(update=updates)
    served = create_app(configured, encoders={str(tiny_model_dir): tiny_encoder})

    def in_process(*arguments, **options):
        raise AssertionError("a kb command ran in the CLI's process")

    with live_server(served, ready_path="/ready", port=configured.port) as url:
        monkeypatch.setattr(local.LocalKnowledgeBase, "__init__", in_process)
        yield url, keys, store
    store.close()


def test_kb_commands_go_through_the_server_with_the_users_key(served_home, tmp_path):
    url, keys, store = served_home
    runner = CliRunner()
    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "a.md").write_text("# Alpha\n\nThe alpha particle is a helium nucleus.\n")
    (corpus / "b.txt").write_text("Beta decay emits an electron.")
    alice = ["--api-key", keys["alice"]]

    created = runner.invoke(app, ["kb", "create", "notes", *alice])
    assert created.exit_code == 0, created.output
    assert created.stdout.startswith("created notes: model random-qwen3-tiny")
    assert f"`kb create` went through embedhub serve at {url} with your API key" in created.stderr
    added = runner.invoke(app, ["kb", "add", "notes", str(corpus), "--json", *alice])
    assert added.exit_code == 0, added.output
    summary = json.loads(added.stdout)
    assert (summary["added"], summary["failed"], summary["still_running"]) == (2, 0, 0)
    assert summary["chunks"] >= 2 and summary["tokens"] > 0
    listed = json.loads(runner.invoke(app, ["kb", "list", "--json", *alice]).stdout)["collections"]
    assert [row["name"] for row in listed] == ["notes"] and listed[0]["owner"] == "alice"
    info = json.loads(runner.invoke(app, ["kb", "info", "notes", "--json", *alice]).stdout)
    assert info["done"] == 2 and info["failures"] == []

    # bob is a viewer: he may not create, and does not see alice's collection until she shares it
    refused = runner.invoke(app, ["kb", "create", "mine", "--api-key", keys["bob"]])
    assert refused.exit_code == 2
    assert "refused `kb create` for your key (403 forbidden): viewers may not create collections" in (
        refused.stderr
    )
    hidden = runner.invoke(app, ["kb", "info", "notes", "--api-key", keys["bob"]])
    assert hidden.exit_code == 2 and "no collection named 'notes'" in hidden.stderr
    shared = runner.invoke(app, ["kb", "share", "notes", "--user", "bob", "--json", *alice])
    assert shared.exit_code == 0, shared.output
    assert json.loads(shared.stdout)["shares"] == [{"kind": "user", "name": "bob", "role": "viewer"}]
    seen = runner.invoke(app, ["kb", "info", "notes", "--json", "--api-key", keys["bob"]])
    assert seen.exit_code == 0 and json.loads(seen.stdout)["you"] == "viewer"
    for command in (["add", "notes", str(corpus)], ["remove", "notes", str(corpus / "b.txt")]):
        denied = runner.invoke(app, ["kb", *command, "--api-key", keys["bob"]])
        assert denied.exit_code == 2, denied.output
        assert "(403 forbidden): you are a viewer of collection 'notes': you may not" in denied.stderr
    # alice's own changes: a share bob may not make, a removal
    not_his = runner.invoke(app, ["kb", "unshare", "notes", "--user", "bob", "--api-key", keys["bob"]])
    assert not_his.exit_code == 2 and "403 forbidden" in not_his.stderr
    removed = runner.invoke(app, ["kb", "remove", "notes", str(corpus / "b.txt"), *alice])
    assert removed.exit_code == 0 and "removed 1" in removed.stdout
    assert json.loads(runner.invoke(app, ["kb", "info", "notes", "--json", *alice]).stdout)["done"] == 1

    # the server saw every change, as alice
    actions = {(row["user"], row["action"]) for row in store.audit(limit=50)}
    assert {("alice", "create"), ("alice", "add_folder"), ("alice", "share"), ("alice", "delete")} <= actions


def test_without_a_key_or_with_a_wrong_one_nothing_is_done(served_home, monkeypatch):
    url, keys, store = served_home
    runner = CliRunner()
    missing = runner.invoke(app, ["kb", "create", "notes"])
    assert missing.exit_code == 2
    assert f"the embedhub serve for this home ({url}) has accounts on" in missing.stderr
    assert "--api-key" in missing.stderr and "EMBEDHUB_API_KEY" in missing.stderr
    wrong = runner.invoke(app, ["kb", "list", "--api-key", "not-a-key"])
    assert wrong.exit_code == 2 and "refused your API key (401)" in wrong.stderr
    monkeypatch.setenv("EMBEDHUB_API_KEY", keys["alice"])
    listed = runner.invoke(app, ["kb", "list", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout) == {"collections": []}
    assert not [row for row in store.audit(limit=50) if row["action"] == "create"]


def test_kb_add_through_the_server_drives_the_progress_display(served_home, tmp_path, settings):
    """The bar of `kb add` follows the server's jobs: it is told how many files, each one's stage
    and each one's outcome, as the in-process ingest tells it."""
    from embedhub.access.client import ServerClient
    from embedhub.access.contract import AddOptions, CreateOptions
    from embedhub.access.served import ServedKnowledgeBase
    from embedhub.kb.ingest import Progress

    url, keys, _ = served_home
    corpus = tmp_path / "notes"
    corpus.mkdir()
    for index in range(3):
        (corpus / f"{index}.txt").write_text(f"Note {index} about particle number {index * 7}.")

    class Recorded(Progress):
        def __init__(self) -> None:
            self.started, self.outcomes = None, []

        def start(self, files: int) -> None:
            self.started = files

        def file_done(self, outcome) -> None:
            self.outcomes.append((outcome.path.rsplit("/", 1)[-1], str(outcome.status), outcome.chunks))

    client = ServerClient(url, settings.model_copy(update={"api_key": keys["alice"]}))
    served = ServedKnowledgeBase(client)
    served.create("bar", CreateOptions())
    progress = Recorded()
    summary = served.add_paths("bar", AddOptions((corpus,)), progress)
    assert progress.started == 3 and summary["added"] == 3
    assert sorted(progress.outcomes) == [(f"{index}.txt", "added", 1) for index in range(3)]
    human = CliRunner().invoke(
        app, ["kb", "add", "bar", str(corpus), "--ann-min-rows", "5", "--api-key", keys["alice"]]
    )
    assert human.exit_code == 0, human.output
    assert "added 0, updated 0, skipped 3 (unchanged), failed 0, removed 0" in human.stdout
    assert "--ann-min-rows not used: the server ingests with its own settings" in human.stdout


@pytest.mark.parametrize("served_home", [{"folder_roots": ["/nonexistent-root"]}], indirect=True)
def test_kb_add_uploads_what_the_server_may_not_read_in_place(served_home, tmp_path):
    """Outside the server's folder roots, `kb add` sends the files (stored in the collection) and
    says so, instead of failing; a viewer is still refused."""
    _, keys, _ = served_home
    runner = CliRunner()
    corpus = tmp_path / "notes"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "a.md").write_text("# Alpha\n\nThe alpha particle is a helium nucleus.\n")
    (corpus / "sub" / "b.txt").write_text("Beta decay emits an electron.")
    alice = ["--api-key", keys["alice"]]
    assert runner.invoke(app, ["kb", "create", "notes", *alice]).exit_code == 0
    added = runner.invoke(app, ["kb", "add", "notes", str(corpus), *alice])
    assert added.exit_code == 0, added.output
    assert "added 2, updated 0, skipped 0 (unchanged), failed 0" in added.stdout
    assert f"uploaded: {corpus} (outside the server's folder roots" in added.stdout
    info = json.loads(runner.invoke(app, ["kb", "info", "notes", "--json", *alice]).stdout)
    assert info["done"] == 2
    again = json.loads(runner.invoke(app, ["kb", "add", "notes", str(corpus), "--json", *alice]).stdout)
    assert (again["added"], again["skipped"], again["failed"]) == (0, 2, 0)
    denied = runner.invoke(app, ["kb", "add", "notes", str(corpus), "--api-key", keys["bob"]])
    assert denied.exit_code == 2 and "no collection named 'notes'" in denied.stderr


@pytest.mark.parametrize("served_home", [{"accounts": "off"}], indirect=True)
def test_with_accounts_off_a_running_server_still_does_the_work(served_home, tmp_path):
    """As `kb search` does: no key needed, the server (which owns the store) writes, and the
    command says it went through it."""
    url, _, _ = served_home
    runner = CliRunner()
    created = runner.invoke(app, ["kb", "create", "notes"])
    assert created.exit_code == 0, created.output
    assert f"`kb create` went through embedhub serve at {url}" in created.stderr
    listed = json.loads(runner.invoke(app, ["kb", "list", "--json"]).stdout)["collections"]
    assert [row["name"] for row in listed] == ["notes"]
    dropped = runner.invoke(app, ["kb", "drop", "notes", "--yes"])
    assert dropped.exit_code == 0 and "dropped notes" in dropped.stdout
    assert json.loads(runner.invoke(app, ["kb", "list", "--json"]).stdout) == {"collections": []}


def test_kb_failures_go_through_the_server_with_the_users_key(served_home, tmp_path):
    """`kb failures` lists and dismisses through the server as the key's user: a viewer may list a
    shared collection's failures but not dismiss them; no key or a wrong one does nothing here."""
    url, keys, store = served_home
    runner = CliRunner()
    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "a.md").write_text("# Alpha\n\nThe alpha particle is a helium nucleus.\n")
    (corpus / "bad.pdf").write_text("not a pdf")
    (corpus / "empty.txt").write_text("")
    alice = ["--api-key", keys["alice"]]
    assert runner.invoke(app, ["kb", "create", "notes", *alice]).exit_code == 0
    added = runner.invoke(app, ["kb", "add", "notes", str(corpus), *alice])
    assert added.exit_code == 1, added.output
    assert added.stderr.splitlines()[-1].startswith("`embedhub kb failures notes` lists")

    listed = runner.invoke(app, ["kb", "failures", "notes", "--json", *alice])
    assert listed.exit_code == 0, listed.output
    assert f"`kb failures` went through embedhub serve at {url} with your API key" in listed.stderr
    paths = sorted(row["path"] for row in json.loads(listed.stdout)["failures"])
    assert paths == sorted(str((corpus / name).resolve()) for name in ("bad.pdf", "empty.txt"))
    human = runner.invoke(app, ["kb", "failures", "notes", *alice])
    assert "failed (ingest)" in next(line for line in human.stdout.splitlines() if "bad.pdf" in line)

    for refused, expected in (
        ([], "has accounts on and `kb failures --dismiss-all` gave it no user key"),
        (["--api-key", "not-a-key"], "refused your API key (401)"),
    ):
        result = runner.invoke(app, ["kb", "failures", "notes", "--dismiss-all", *refused])
        assert result.exit_code == 2 and expected in result.stderr, result.output
    assert runner.invoke(app, ["kb", "share", "notes", "--user", "bob", *alice]).exit_code == 0
    bob = ["--api-key", keys["bob"]]
    seen = runner.invoke(app, ["kb", "failures", "notes", "--json", *bob])
    assert seen.exit_code == 0 and len(json.loads(seen.stdout)["failures"]) == 2
    denied = runner.invoke(app, ["kb", "failures", "notes", "--dismiss", paths[0], *bob])
    assert denied.exit_code == 2
    assert "refused `kb failures --dismiss` for your key (403 forbidden)" in denied.stderr

    one = runner.invoke(app, ["kb", "failures", "notes", "--dismiss", paths[0], "--json", *alice])
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout) == {"dismissed": 1, "paths": [paths[0]]}
    unknown = runner.invoke(app, ["kb", "failures", "notes", "--dismiss", "nope", *alice])
    assert unknown.exit_code == 2 and "keeps no failure for 'nope'" in unknown.stderr
    rest = runner.invoke(app, ["kb", "failures", "notes", "--dismiss-all", *alice])
    assert rest.exit_code == 0 and rest.stdout.strip() == "dismissed 1 failure(s) of notes"
    assert json.loads(runner.invoke(app, ["kb", "failures", "notes", "--json", *alice]).stdout) == {
        "failures": []
    }
    dismissals = [row for row in store.audit(limit=100) if row["action"] == "dismiss_failures"]
    assert len(dismissals) == 2 and {row["user"] for row in dismissals} == {"alice"}
