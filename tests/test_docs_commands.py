"""Every shell command the README and docs/*.md show is run here, as a user types it.

Commands are read from the fenced code blocks (lines starting with `embedhub` or `make run`) and
run in order, in a real shell, against an isolated EMBEDHUB_HOME and HOME (with `~/papers` and
`~/wiki` holding a few real files). A command that offers `--json` runs in both forms (read-only
commands; a state-changing one keeps its documented form only), and the JSON must parse. Paths
that only exist on a user's machine are mapped to test folders: `/models/NAME` and a
`--model Qwen3-Embedding-0.6B` to a random-weight model of the real 0.6B width (one layer, so it
loads in a second; vectors are meaningless, the commands and their output are what is tested),
`--reranker Qwen3-Reranker-0.6B` to the tiny random-weight Qwen3-Reranker (scores meaningless),
and `/tmp/` to the test's own temporary folder; the remote endpoints `http://gpu1:8000` and
`http://gpu2:8000` to an `embedhub serve` of that model, started the first time a command names
them. README commands are fast; docs/*.md commands
(evaluations over the shared data sets) are marked slow.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.kb.conftest import make_docx, make_pdf
from tests.live_server import free_port

FENCE = re.compile(r"^```([\w-]*)\s*$")
SHELL_LANGUAGES = {"", "sh", "bash", "shell", "console"}
# Commands that change state: run only as documented (a second run would fail or repeat).
NOT_REPEATABLE = {("kb", "create"), ("kb", "remove"), ("kb", "drop"), ("kb", "reembed"), ("serve",)}
QWEN3 = "Qwen3-Embedding-0.6B"
REMOTE_HOSTS = ("http://gpu1:8000", "http://gpu2:8000")
QWEN3_RERANKER = "Qwen3-Reranker-0.6B"


@dataclass(frozen=True)
class Command:
    source: str
    line: int
    text: str

    @property
    def words(self) -> list[str]:
        return shlex.split(self.text, comments=True)


def documented_commands(path: Path) -> list[Command]:
    """`embedhub ...` and `make run` lines of the shell code blocks of one Markdown file."""
    commands, language = [], None
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fence = FENCE.match(line.strip())
        if fence:
            language = fence.group(1).lower() if language is None else None
            continue
        if language not in SHELL_LANGUAGES:
            continue
        if not re.match(r"\s*(embedhub\s|make run\b)", line):
            continue
        words = shlex.split(line, comments=True)
        if words[:1] == ["embedhub"] or words[:2] == ["make", "run"]:
            commands.append(Command(path.name, number, shlex.join(words)))
    return commands


def _click_command(words: list[str]):
    """The click command a command line reaches (for its options), or None."""
    import typer

    from embedhub.cli import app

    command = typer.main.get_command(app)
    for word in words[1:]:
        sub = getattr(command, "commands", {}).get(word)
        if sub is None:
            break
        command = sub
    return command


def supports_json(words: list[str]) -> bool:
    """Whether the command has a `--json` switch (`bench --json FILE` takes a value instead)."""
    command = _click_command(words)
    return any(
        "--json" in parameter.opts and getattr(parameter, "is_flag", False)
        for parameter in getattr(command, "params", [])
    )


def subcommand(words: list[str]) -> tuple[str, ...]:
    path = []
    for word in words[1:]:
        if word.startswith("-"):
            break
        path.append(word)
        if len(path) == 2:
            break
    return tuple(path[:2]) if path[:1] in (["kb"], ["models"], ["eval"]) else tuple(path[:1])


@pytest.fixture(scope="module")
def workplace(tmp_path_factory, settings):
    """HOME with ~/papers and ~/wiki, an empty EMBEDHUB_HOME, and the 0.6B-wide test model."""
    from embedhub.models import random_model

    root = tmp_path_factory.mktemp("docs-commands")
    home = root / "home"
    (home / "papers").mkdir(parents=True)
    (home / "wiki").mkdir()
    make_pdf(home / "papers" / "cache.pdf", ["The embedding cache is keyed by model and exact input ids.",
                                            "Entries are stored at native size before MRL."])  # fmt: skip
    make_docx(home / "papers" / "report.docx")
    (home / "wiki" / "index.md").write_text("# Wiki\n\n## Cache\n\nHow is the cache keyed? By token ids.\n")
    (home / "wiki" / "old-page.md").write_text("# Old page\n\nSomething nobody needs any more.\n")
    (home / "wiki" / "notes.txt").write_text("Plain text notes about embeddings and search.\n")
    models = root / "models"
    shapes = dict(random_model.SHAPES)
    random_model.SHAPES["0.6B-one-layer"] = {**shapes["0.6B"], "num_hidden_layers": 1}
    try:
        random_model.make_random_model("0.6B-one-layer", models / QWEN3, cache_dir=settings.cache_dir)
    finally:
        random_model.SHAPES.clear()
        random_model.SHAPES.update(shapes)
    random_model.make_random_reranker("tiny", models / QWEN3_RERANKER, cache_dir=settings.cache_dir)
    environment = {
        **os.environ,
        "HOME": str(home),
        "EMBEDHUB_HOME": str(root / "embedhub-home"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "COLUMNS": "120",
    }
    environment.pop("EMBEDHUB_MODEL_DIRS", None)
    place = {"root": root, "home": home, "models": models, "env": environment}
    place["remote_endpoint"] = endpoint = RemoteEndpoint(place)
    yield place
    endpoint.stop()


class RemoteEndpoint:
    """The documents' remote GPU hosts, played by `embedhub serve` of the test model (started
    once, on first use)."""

    def __init__(self, place: dict) -> None:
        self.place = place
        self.process: subprocess.Popen | None = None
        self.url = ""

    def __call__(self) -> str:
        if self.process is None:
            port = free_port()
            command = ["embedhub", "serve", "--model", str(self.place["models"] / QWEN3), "--port", str(port)]
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.place["env"], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            self.url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    if httpx.get(self.url + "/ready", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.25)
            else:
                raise AssertionError("the stand-in remote endpoint did not become ready")
        return self.url

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


def localise(words: list[str], place: dict) -> list[str]:
    """Map the paths of a user's machine onto the test's folders (see the module docstring)."""
    mapped = []
    for index, word in enumerate(words):
        if word == QWEN3 and index and words[index - 1] in ("--model", "-m"):
            word = str(place["models"] / QWEN3)
        elif word == QWEN3_RERANKER and index and words[index - 1] == "--reranker":
            word = str(place["models"] / QWEN3_RERANKER)
        elif word.startswith("/models/"):
            word = str(place["models"]) + word[len("/models") :]
        elif word.startswith("/tmp/"):
            word = str(place["root"]) + word[len("/tmp") :]
        elif word.startswith("remote:") and any(host in word for host in REMOTE_HOSTS):
            endpoint = place["remote_endpoint"]()
            for host in REMOTE_HOSTS:
                word = word.replace(host, endpoint)
        mapped.append(word)
    return mapped


def run(words: list[str], place: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        shlex.join(words), shell=True, cwd=ROOT, env=place["env"], capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def check(command: Command, words: list[str], place: dict) -> None:
    result = run(words, place)
    where = f"{command.source}:{command.line} `{shlex.join(words)}`"
    assert result.returncode == 0, f"{where} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip(), f"{where} printed nothing"
    assert "Traceback" not in result.stderr, f"{where} printed a traceback:\n{result.stderr}"
    if "--json" in words and supports_json(words):
        json.loads(result.stdout)


def run_documented(commands: list[Command], place: dict) -> int:
    ran = 0
    for command in commands:
        words = localise(command.words, place)
        if words[:2] == ["make", "run"] or subcommand(words) == ("serve",):
            check_server(words, place)
            ran += 1
            continue
        check(command, words, place)
        ran += 1
        if subcommand(words) in NOT_REPEATABLE or not supports_json(words):
            continue
        other = [w for w in words if w != "--json"] if "--json" in words else [*words, "--json"]
        check(command, other, place)
        ran += 1
    return ran


def check_server(words: list[str], place: dict) -> None:
    """`make run` / `embedhub serve ...` start the real service: it answers /ready, embeds, serves
    the UI, and stops on Ctrl-C. A documented --port is replaced by a free one."""
    port = free_port()
    words = list(words)
    if "--port" in words:
        words[words.index("--port") + 1] = str(port)
    key = words[words.index("--api-key") + 1] if "--api-key" in words else None
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    environment = {**place["env"], "EMBEDHUB_PORT": str(port)}
    process = subprocess.Popen(
        words, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        assert process.poll() is None, f"{shlex.join(words)} exited early:\n{process.stdout.read()}"
        models = httpx.get(url + "/v1/models", headers=headers, timeout=10).json()["data"]
        assert models, f"{shlex.join(words)} serves no model (not ready within 240 s?)"
        answer = httpx.post(
            url + "/v1/embeddings",
            headers=headers,
            json={"model": models[0]["id"], "input": "hello"},
            timeout=60,
        )
        assert answer.status_code == 200
        assert len(answer.json()["data"][0]["embedding"]) == models[0]["dimensions"]
        if "--reranker" in words:
            ranked = httpx.post(
                url + "/v1/rerank", headers=headers, json={"query": "q", "documents": ["a", "b"]}, timeout=60
            )
            assert ranked.status_code == 200 and len(ranked.json()["results"]) == 2
        assert "<title>embedhub</title>" in httpx.get(url + "/", timeout=10).text
    finally:
        os.killpg(process.pid, signal.SIGINT)
        interrupted = time.monotonic()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise AssertionError(f"{shlex.join(words)} did not stop within 30 s of Ctrl-C") from None
    assert time.monotonic() - interrupted < 10, "Ctrl-C took more than 10 s to stop the server"


def test_readme_commands_run_as_written(workplace):
    commands = documented_commands(ROOT / "README.md")
    assert len(commands) >= 10, "the README lost its commands"
    assert run_documented(commands, workplace) > len(commands)


DOCS = sorted((ROOT / "docs").glob("*.md"))


@pytest.mark.slow
@pytest.mark.parametrize("document", DOCS, ids=[path.name for path in DOCS])
def test_docs_commands_run_as_written(document, workplace):
    commands = documented_commands(document)
    if not commands:
        pytest.skip(f"{document.name} shows no command")
    run_documented(commands, workplace)


def test_every_documented_command_parses():
    """Fast check of every command in every document: the subcommand and each option exist."""
    checked = 0
    for document in [ROOT / "README.md", *DOCS]:
        for command in documented_commands(document):
            words = command.words
            if words[0] != "embedhub":
                continue
            target = _click_command(words)
            names = {opt for parameter in target.params for opt in parameter.opts}
            for word in words[1:]:
                if word.startswith("-") and word.split("=", 1)[0] not in names:
                    raise AssertionError(f"{command.source}:{command.line}: {word} is not an option")
            checked += 1
    assert checked >= 10
