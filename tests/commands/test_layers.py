"""The import layers of `src/embedhub`, read with `ast` (no third-party tool, nothing imported).

Each package may import its own modules, the packages of its own layer (as long as no cycle
forms between packages) and any layer below it; never a layer above:

    0  embedhub (the version), errors, config     what everything shares (ui: static files only)
    1  models                                     encoders, rerankers, their registries
    2  engine                                     the one scheduler per model
    3  kb, accounts, eval, bench                  the domain: knowledge base, users, measuring
    4  access                                     the knowledge base through a running server or here
    5  mcp, server                                the two ways in from outside (MCP tools, HTTP)
    6  commands                                   the command groups (typer)
    7  cli                                        the `embedhub` command that puts them together

Both imports at the top of a module and imports inside functions count: an import that runs
back up the layers ties the lower room to the upper one whenever it runs. The unit tests at the
end show that the check fails on an upward import and on a cycle, on synthetic trees."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "src" / "embedhub"

LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"embedhub", "errors", "config", "ui"}),
    frozenset({"models"}),
    frozenset({"engine"}),
    frozenset({"kb", "accounts", "eval", "bench"}),
    frozenset({"access"}),
    frozenset({"mcp", "server"}),
    frozenset({"commands"}),
    frozenset({"cli"}),
)
#: the packages that hold the domain: no command-line or web-framework library in them
DOMAIN = ("models", "engine", "kb", "accounts", "eval", "access", "mcp")
FRONT_END_LIBRARIES = ("typer", "click", "rich", "fastapi", "starlette", "uvicorn")
FRONT_ENDS = ("server", "commands", "cli")


def module_name(path: Path, root: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path) -> set[str]:
    """Every module `path` imports (absolute names), at the top or inside functions."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module:
                found.add(node.module)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module name -> the modules it imports, for every .py file under the package `root`."""
    return {module_name(path, root): imports_of(path, root) for path in sorted(root.rglob("*.py"))}


def room(module: str, top: str) -> str | None:
    """The package (room) a module of `top` belongs to: `top.kb.search` -> `kb`; `top` itself
    -> `top`; None for a module outside `top`."""
    parts = module.split(".")
    if parts[0] != top:
        return None
    return parts[1] if len(parts) > 1 else top


def layer_of(name: str, layers=LAYERS) -> int:
    for index, members in enumerate(layers):
        if name in members:
            return index
    raise AssertionError(
        f"package {name!r} is in no layer: add it to LAYERS in tests/commands/test_layers.py"
    )


def upward_imports(graph: dict[str, set[str]], top: str, layers=LAYERS) -> list[str]:
    """`a -> b` for every import from a lower layer to a higher one."""
    found = []
    for module, imported in graph.items():
        source = room(module, top)
        for target_module in sorted(imported):
            target = room(target_module, top)
            if target is None or target == source:
                continue
            if layer_of(target, layers) > layer_of(source, layers):
                found.append(f"{module} -> {target_module} ({source} is below {target})")
    return found


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk of `edges` meets, each as the nodes around it."""
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for following in sorted(edges.get(node, ())):
            if state.get(following) == "open":
                cycles.append([*path[path.index(following) :], following])
            elif following not in state:
                visit(following, [*path, following])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return cycles


def package_cycles(graph: dict[str, set[str]], top: str) -> list[list[str]]:
    """Cycles between packages (rooms), each as the list of rooms around it."""
    edges: dict[str, set[str]] = defaultdict(set)
    for module, imported in graph.items():
        source = room(module, top)
        for target_module in imported:
            target = room(target_module, top)
            if target is not None and target != source:
                edges[source].add(target)
    return find_cycles(edges)


def test_no_import_runs_back_up_the_layers():
    assert upward_imports(import_graph(SOURCE), "embedhub") == []


def test_no_cycle_between_packages():
    assert package_cycles(import_graph(SOURCE), "embedhub") == []


def test_domain_packages_import_no_command_line_or_server_code():
    """The domain imports no CLI or web-framework library and none of the front ends' modules.
    (`mcp/server.py` is the MCP SDK's own HTTP front end: its libraries are allowed, embedhub's
    HTTP server is not.)"""
    graph = import_graph(SOURCE)
    found = [
        f"{module} -> {name}"
        for module, imported in graph.items()
        if room(module, "embedhub") in DOMAIN
        for name in imported
        if room(name, "embedhub") in FRONT_ENDS
        or (name.split(".")[0] in FRONT_END_LIBRARIES and module != "embedhub.mcp.server")
    ]
    assert found == []


def test_every_package_has_a_layer():
    for path in SOURCE.iterdir():
        if path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").exists()):
            name = path.stem if path.suffix == ".py" else path.name
            layer_of("embedhub" if name == "__init__" else name)


def _tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / "pkg" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "pkg"


SYNTHETIC_LAYERS = (frozenset({"pkg", "low"}), frozenset({"mid", "side"}), frozenset({"high"}))


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"low/a.py": "import json\n", "high/b.py": "from pkg.low import a\n"}, []),
        ({"low/a.py": "from pkg.high import b\n", "high/b.py": ""}, ["pkg.low.a -> pkg.high"]),
        # inside a function counts too
        ({"low/a.py": "def f():\n    import pkg.mid.c\n", "mid/c.py": ""}, ["pkg.low.a -> pkg.mid.c"]),
        # a relative import that climbs out of its package
        ({"low/a.py": "from ..high import b\n", "high/b.py": ""}, ["pkg.low.a -> pkg.high"]),
        # the same layer is allowed (cycles are the other check's)
        ({"mid/a.py": "from pkg.side import b\n", "side/b.py": ""}, []),
    ],
)
def test_the_layer_check_fails_on_an_upward_import(tmp_path, files, expected):
    root = _tree(tmp_path, files)
    found = upward_imports(import_graph(root), "pkg", SYNTHETIC_LAYERS)
    assert [line.split(" (")[0] for line in found] == expected


def test_the_cycle_check_fails_on_a_cycle_through_a_function_level_import(tmp_path):
    root = _tree(
        tmp_path,
        {
            "mid/a.py": "from pkg.side import b\n",
            "side/b.py": "def later():\n    from pkg.mid import a\n",
            "low/c.py": "",
        },
    )
    assert package_cycles(import_graph(root), "pkg") == [["mid", "side", "mid"]]
    (root / "side" / "b.py").write_text("", encoding="utf-8")
    assert package_cycles(import_graph(root), "pkg") == []


def module_cycles(graph: dict[str, set[str]], package: str) -> list[list[str]]:
    """Cycles between the modules of one package (`embedhub.models`), each as its modules."""
    inside = {module for module in graph if module.startswith(package + ".")}
    return find_cycles({module: graph[module] & inside for module in inside})


def test_models_load_in_one_direction():
    """Resolving weights (loading) comes before running them (backends): no module of models/
    imports one that imports it back, so there is one loading entry point, backends.load_encoder."""
    assert module_cycles(import_graph(SOURCE), "embedhub.models") == []


def test_no_module_cycle_inside_any_package():
    """Inside each room too, modules import in one direction (a type-only import counts: it is
    where a Protocol belongs, as eval/core.py's PartJournal shows). A package's __init__ naming
    its own modules is not a cycle."""
    graph = import_graph(SOURCE)
    for package in sorted({module.rsplit(".", 1)[0] for module in graph if module.count(".") >= 2}):
        cycles = [cycle for cycle in module_cycles(graph, package) if len(set(cycle)) > 1]
        assert cycles == [], f"{package}: {cycles}"


def test_the_module_cycle_check_finds_a_cycle(tmp_path):
    files = {"models/a.py": "import pkg.models.b\n", "models/b.py": "def f():\n    import pkg.models.a\n"}
    cycle = module_cycles(import_graph(_tree(tmp_path, files)), "pkg.models")
    assert cycle == [["pkg.models.a", "pkg.models.b", "pkg.models.a"]]
