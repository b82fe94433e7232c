"""Running the shell commands the README and docs/*.md show, as a user types them.

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
them.

The README's commands are split into `GROUPS` by the section they appear in, each run by its own
small test file (tests/test_readme_NAME.py) in a fresh workplace, so pytest-xdist's `loadfile`
hands them to different workers. A group that needs state an earlier section creates (a
collection) runs those README commands first (its `setup`). tests/test_docs_commands.py checks
that every README command belongs to exactly one group. Each run prints the wall time of every
command (`pytest -rA` or `-s` shows it).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from filelock import FileLock

from tests.conftest import ROOT
from tests.kb.conftest import make_docx, make_pdf
from tests.live_server import free_port

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^```([\w-]*)\s*$")
HEADING = re.compile(r"^(#{2,6})\s+(.*?)\s*$")
SHELL_LANGUAGES = {"", "sh", "bash", "shell", "console"}
#: the section of the commands above a document's first `##` heading
INTRODUCTION = "(introduction)"
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
    #: the headings it appears under, from its `##` section down (INTRODUCTION before the first)
    sections: tuple[str, ...] = (INTRODUCTION,)

    @property
    def words(self) -> list[str]:
        return shlex.split(self.text, comments=True)

    def starts_with(self, prefix: str) -> bool:
        """Whether its words after the program name begin with `prefix` (e.g. "kb ask")."""
        wanted = prefix.split()
        return self.words[1 : 1 + len(wanted)] == wanted

    def __str__(self) -> str:
        return f"{self.source}:{self.line} `{self.text}`"


def documented_commands(path: Path) -> list[Command]:
    """`embedhub ...` and `make run` lines of the shell code blocks of one Markdown file."""
    commands, language, headings = [], None, {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fence = FENCE.match(line.strip())
        if fence:
            language = fence.group(1).lower() if language is None else None
            continue
        heading = HEADING.match(line) if language is None else None
        if heading:
            level = len(heading.group(1))
            headings = {depth: title for depth, title in headings.items() if depth < level}
            headings[level] = heading.group(2)
            continue
        if language not in SHELL_LANGUAGES:
            continue
        if not re.match(r"\s*(embedhub\s|make run\b)", line):
            continue
        words = shlex.split(line, comments=True)
        if words[:1] == ["embedhub"] or words[:2] == ["make", "run"]:
            sections = tuple(headings[depth] for depth in sorted(headings)) or (INTRODUCTION,)
            commands.append(Command(path.name, number, shlex.join(words), sections))
    return commands


@dataclass(frozen=True)
class Part:
    """The commands under the heading `section` (a `##` or `###` title, INTRODUCTION for those
    above the first), optionally only those starting with one of `only`, or none of `skip`."""

    section: str
    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()

    def claims(self, command: Command) -> bool:
        if self.section not in command.sections:
            return False
        if self.only and not any(command.starts_with(prefix) for prefix in self.only):
            return False
        return not any(command.starts_with(prefix) for prefix in self.skip)


@dataclass(frozen=True)
class Setup:
    """The one README command under `section` starting with `prefix`, run first to create state."""

    section: str
    prefix: str

    def find(self, commands: list[Command]) -> Command:
        found = [c for c in commands if self.section in c.sections and c.starts_with(self.prefix)]
        if len(found) != 1:
            raise AssertionError(
                f"setup step `embedhub {self.prefix}` under {self.section!r} matches {len(found)} "
                f"README commands, not one: {[str(c) for c in found]}"
            )
        return found[0]


@dataclass(frozen=True)
class Group:
    """README commands run together, in README order, in one fresh workplace, by
    tests/test_readme_NAME.py. `setup` names earlier README commands that create what they need."""

    name: str
    parts: tuple[Part, ...]
    setup: tuple[Setup, ...] = ()

    @property
    def test_file(self) -> str:
        return f"tests/test_readme_{self.name.replace('-', '_')}.py"

    def commands(self, commands: list[Command]) -> list[Command]:
        return [c for c in commands if any(part.claims(c) for part in self.parts)]

    def setup_commands(self, commands: list[Command]) -> list[Command]:
        return [step.find(commands) for step in self.setup]


# Each group's commands took 20-75 s alone on the 2-core machine, 30-120 s in a whole `make test`
# (the knowledge base's 130 s alone is split in two: answers re-create `notes` first); the ANN
# index section reuses the Milvus section's `wiki`, so the two stay one group.
GROUPS = {
    group.name: group
    for group in (
        Group("server", (Part(INTRODUCTION), Part("The server"))),
        Group("knowledge_base", (Part("Knowledge base", skip=("kb ask",)),)),
        Group(
            "answers",
            (Part("Knowledge base", only=("kb ask",)),),
            setup=(Setup("Knowledge base", "kb create notes"), Setup("Knowledge base", "kb add notes")),
        ),
        Group("milvus", (Part("Milvus store"), Part("Approximate (ANN) vector index"))),
        Group("remote_encoders", (Part("Remote encoders"),)),
        Group("ray", (Part("Ingestion on Ray"),)),
        Group("models", (Part("Models"),)),
    )
}


def _click_command(words: list[str]):
    """The click command a command line reaches (for its options), or None."""
    import typer

    from embedhub.cli import app

    command = typer.main.get_command(app)
    for word in words[1:]:
        # get_command, not .commands: a group may be imported on first use (embedhub.cli)
        sub = command.get_command(None, word) if hasattr(command, "get_command") else None
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


class Models:
    """The model folders commands name, built on first use and shared, read-only, by every
    workplace of this test run (a file lock makes one pytest-xdist worker build each)."""

    def __init__(self, folder: Path, cache_dir: Path) -> None:
        self.folder = folder
        self.cache_dir = cache_dir
        self.builders = {QWEN3: self._qwen3_one_layer, QWEN3_RERANKER: self._tiny_reranker}

    def path(self, name: str) -> Path:
        target = self.folder / name
        if name not in self.builders:
            return target
        self.folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.folder / f"{name}.lock")):
            if not target.exists():
                started = time.monotonic()
                partial = self.folder / f"{name}.partial"
                shutil.rmtree(partial, ignore_errors=True)  # a build interrupted earlier
                self.builders[name](partial)
                partial.rename(target)
                print(f"{time.monotonic() - started:7.2f} s  (built the test model {name})", flush=True)
        return target

    def _qwen3_one_layer(self, out: Path) -> None:
        from embedhub.models import random_model

        shapes = dict(random_model.SHAPES)
        random_model.SHAPES["0.6B-one-layer"] = {**shapes["0.6B"], "num_hidden_layers": 1}
        try:
            random_model.make_random_model("0.6B-one-layer", out, cache_dir=self.cache_dir)
        finally:
            random_model.SHAPES.clear()
            random_model.SHAPES.update(shapes)

    def _tiny_reranker(self, out: Path) -> None:
        from embedhub.models import random_model

        random_model.make_random_reranker("tiny", out, cache_dir=self.cache_dir)


def shared_folder(tmp_path_factory) -> Path:
    """A folder of this test run that every pytest-xdist worker sees (the pattern xdist documents)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@dataclass
class Workplace:
    root: Path
    home: Path
    env: dict[str, str]
    models: Models
    endpoint: RemoteEndpoint | None = None
    #: (seconds, what ran), in order: printed as the group runs
    times: list[tuple[float, str]] = field(default_factory=list)

    def remote_endpoint(self) -> str:
        if self.endpoint is None:
            self.endpoint = RemoteEndpoint(self)
        return self.endpoint()

    def timed(self, what: str, started: float) -> None:
        seconds = time.monotonic() - started
        self.times.append((seconds, what))
        print(f"{seconds:7.2f} s  {what}", flush=True)


@contextmanager
def workplace(tmp_path_factory, settings, name: str) -> Iterator[Workplace]:
    """HOME with ~/papers and ~/wiki, an empty EMBEDHUB_HOME, and the test models on demand."""
    root = tmp_path_factory.mktemp(f"docs-commands-{name}")
    home = root / "home"
    (home / "papers").mkdir(parents=True)
    (home / "wiki").mkdir()
    make_pdf(home / "papers" / "cache.pdf", ["The embedding cache is keyed by model and exact input ids.",
                                            "Entries are stored at native size before MRL."])  # fmt: skip
    make_docx(home / "papers" / "report.docx")
    (home / "wiki" / "index.md").write_text("# Wiki\n\n## Cache\n\nHow is the cache keyed? By token ids.\n")
    (home / "wiki" / "old-page.md").write_text("# Old page\n\nSomething nobody needs any more.\n")
    (home / "wiki" / "notes.txt").write_text("Plain text notes about embeddings and search.\n")
    environment = {
        **os.environ,
        "HOME": str(home),
        "EMBEDHUB_HOME": str(root / "embedhub-home"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "COLUMNS": "120",
    }
    environment.pop("EMBEDHUB_MODEL_DIRS", None)
    models = Models(shared_folder(tmp_path_factory) / "docs-commands-models", settings.cache_dir)
    place = Workplace(root, home, environment, models)
    try:
        yield place
    finally:
        if place.endpoint is not None:
            place.endpoint.stop()
        total = sum(seconds for seconds, _ in place.times)
        print(f"{total:7.2f} s  in all, {len(place.times)} runs ({name})", flush=True)


class RemoteEndpoint:
    """The documents' remote GPU hosts, played by `embedhub serve` of the test model (started
    once, on first use)."""

    def __init__(self, place: Workplace) -> None:
        self.place = place
        self.process: subprocess.Popen | None = None
        self.url = ""

    def __call__(self) -> str:
        if self.process is None:
            started = time.monotonic()
            port = free_port()
            model = str(self.place.models.path(QWEN3))
            command = ["embedhub", "serve", "--model", model, "--port", str(port)]
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.place.env, stdout=subprocess.DEVNULL,
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
            self.place.timed("(the stand-in remote endpoint started)", started)
        return self.url

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


def localise(words: list[str], place: Workplace) -> list[str]:
    """Map the paths of a user's machine onto the test's folders (see the module docstring)."""
    mapped = []
    for index, word in enumerate(words):
        if word == QWEN3 and index and words[index - 1] in ("--model", "-m"):
            word = str(place.models.path(QWEN3))
        elif word == QWEN3_RERANKER and index and words[index - 1] == "--reranker":
            word = str(place.models.path(QWEN3_RERANKER))
        elif word.startswith("/models/"):
            name, _, rest = word[len("/models/") :].partition("/")
            word = str(place.models.path(name)) + (f"/{rest}" if rest else "")
        elif word.startswith("/tmp/"):
            word = str(place.root) + word[len("/tmp") :]
        elif word.startswith("remote:") and any(host in word for host in REMOTE_HOSTS):
            endpoint = place.remote_endpoint()
            for host in REMOTE_HOSTS:
                word = word.replace(host, endpoint)
        mapped.append(word)
    return mapped


def run(words: list[str], place: Workplace, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        shlex.join(words), shell=True, cwd=ROOT, env=place.env, capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def check(command: Command, words: list[str], place: Workplace, note: str = "") -> None:
    started = time.monotonic()
    result = run(words, place)
    where = f"{command.source}:{command.line} `{shlex.join(words)}`"
    if ("--json" in words) != ("--json" in command.words):
        note = note or ("(with --json)" if "--json" in words else "(without --json)")
    place.timed(f"{command}{' ' + note if note else ''}", started)
    assert result.returncode == 0, f"{where} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip(), f"{where} printed nothing"
    assert "Traceback" not in result.stderr, f"{where} printed a traceback:\n{result.stderr}"
    if "--json" in words and supports_json(words):
        json.loads(result.stdout)


def run_documented(commands: list[Command], place: Workplace) -> int:
    ran = 0
    for command in commands:
        words = localise(command.words, place)
        if words[:2] == ["make", "run"] or subcommand(words) == ("serve",):
            started = time.monotonic()
            check_server(words, place)
            place.timed(str(command), started)
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


def check_server(words: list[str], place: Workplace) -> None:
    """`make run` / `embedhub serve ...` start the real service: it answers /ready, embeds, serves
    the UI, and stops on Ctrl-C. A documented --port is replaced by a free one."""
    port = free_port()
    words = list(words)
    if "--port" in words:
        words[words.index("--port") + 1] = str(port)
    key = words[words.index("--api-key") + 1] if "--api-key" in words else None
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    environment = {**place.env, "EMBEDHUB_PORT": str(port)}
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


def run_setup(commands: list[Command], place: Workplace) -> None:
    """Earlier README commands a group depends on, in their documented form only (their own
    group checks the other form)."""
    for command in commands:
        check(command, localise(command.words, place), place, note="(setup)")


def check_readme_group(name: str, tmp_path_factory, settings) -> None:
    """Run one group of the README's commands as written, in a fresh workplace."""
    readme = documented_commands(README)
    group = GROUPS[name]
    commands = group.commands(readme)
    assert commands, f"no README command is left in group {name!r}: its sections were renamed or removed"
    with workplace(tmp_path_factory, settings, name) as place:
        run_setup(group.setup_commands(readme), place)
        assert run_documented(commands, place) >= len(commands)
