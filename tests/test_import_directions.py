"""Every import rule docs/architecture.md states, read from the source: imports inside functions count, imports
under `if TYPE_CHECKING:` are annotations only and do not. ALLOWED is the doc's table "Who may import whom"; a
test below holds the doc and this table to each other."""
from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mqeval"
GROUND = {"errors", "dataclass_io", "registry", "paths", "fileio", "downloads", "hub_download", "seeding", "extras",
          "environment", "run_folder"}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name == "mqeval" or name.startswith("mqeval.")}


IMPORTS = {_module(p): _runtime_imports(ast.parse(p.read_text())) for p in sorted(PACKAGE.rglob("*.py"))}


def _violations(importers, forbidden) -> list[str]:
    return sorted(f"{module} imports {name}" for module, names in IMPORTS.items() if importers(module)
                  for name in names if forbidden(name))


def test_the_modules_were_read():
    assert "mqeval.contract.samples" in IMPORTS and "mqeval.scorers.detectors" in IMPORTS and len(IMPORTS) > 100


def test_the_contract_imports_nothing_of_mqeval_outside_it():
    assert _violations(lambda m: m.startswith("mqeval.contract"),
                       lambda n: not n.startswith("mqeval.contract")) == []


def test_scorers_import_no_benchmark_and_no_orchestrator():
    assert _violations(lambda m: m.startswith("mqeval.scorers"),
                       lambda n: n.startswith(("mqeval.benchmarks", "mqeval.evaluation", "mqeval.cli"))) == []


def test_the_shared_ground_imports_only_itself():
    ground = {f"mqeval.{name}" for name in GROUND}
    assert _violations(lambda m: m in ground,
                       lambda n: n != "mqeval" and not any(n == g or n.startswith(g + ".") for g in ground)) == []


def test_only_the_command_line_imports_the_orchestrator():
    commands = {"mqeval.cli", "mqeval.train.commands", "mqeval.reports.commands", "mqeval.scorers.commands"}
    assert _violations(lambda m: m not in commands and not m.startswith("mqeval.evaluation"),
                       lambda n: n == "mqeval.evaluation" or n.startswith("mqeval.evaluation.")) == []


def test_nothing_imports_the_command_line():
    assert _violations(lambda m: m != "mqeval.__main__",
                       lambda n: n == "mqeval.cli" or n.startswith("mqeval.cli.")) == []


# The rooms of docs/architecture.md and the rooms each may import (besides itself, the ground and the contract).
ROOMS = {
    "contract": set(),
    "images": set(),
    "model": set(),
    "zoo": {"model"},
    "scorers": set(),
    "benchmarks": {"scorers", "images", "model", "zoo"},
    "generation": {"images", "model", "zoo", "benchmarks"},
    "results": {"generation", "model", "zoo"},
    "reports": {"results", "benchmarks", "model", "zoo"},
    "train": {"model", "zoo", "benchmarks", "generation"},
    "evaluation": {"model", "zoo", "scorers", "benchmarks", "images", "generation", "results", "reports", "origin",
                   "preflight", "cli_errors"},
    "origin": {"model", "zoo", "benchmarks", "images", "generation", "results"},
    "preflight": {"generation", "evaluation"},
    "cli_errors": {"generation"},
}
# Narrower doors than a whole room: (importing room, imported room) -> the only modules of it that may be imported.
DOORS = {
    ("results", "generation"): {"mqeval.generation.jobs", "mqeval.generation.settings"},  # seeds and settings
    ("results", "model"): {"mqeval.model.kinds"},  # a kind says what the record names
    ("train", "benchmarks"): {"mqeval.benchmarks.shapes.prompts", "mqeval.benchmarks.shapes.world"},  # scenes
    ("train", "generation"): {"mqeval.generation.distributed"},  # the launch helpers `mqeval run` shares
    ("benchmarks", "model"): {"mqeval.model.loading"},  # the understanding adapter loads a MetaQuery
    ("reports", "model"): {"mqeval.model.kinds"},  # a kind's one-line summary
}


def _room(module: str) -> str:
    name = module.split(".")[1] if module.count(".") else ""
    return "ground" if name in GROUND or not name else name


def _target(name: str) -> str:
    """The module an imported name lives in (`from a.b import c` names a.b.c, which may be a function of a.b)."""
    return name if name in IMPORTS or "." not in name else name.rsplit(".", 1)[0]


def test_every_room_imports_only_what_the_doc_allows():
    bad = []
    for module, names in IMPORTS.items():
        room = _room(module)
        if room not in ROOMS:
            continue
        for name in map(_target, names):
            other = _room(name)
            if other in ("ground", "contract", room) or name == "mqeval":
                continue
            door = DOORS.get((room, other))
            if other not in ROOMS[room] or (door is not None and not any(
                    name == d or name.startswith(d + ".") for d in door)):
                bad.append(f"{module} imports {name}")
    assert sorted(set(bad)) == []


def test_the_rooms_cover_the_package():
    rooms = {_room(m) for m in IMPORTS} - {"ground", "cli", "__main__"}
    assert rooms <= set(ROOMS), rooms - set(ROOMS)


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, stack = {start}, [start]
    while stack:
        for nxt in graph[stack.pop()] - seen:
            seen.add(nxt)
            stack.append(nxt)
    return seen


def test_no_import_circle_between_files_of_different_folders():
    graph = {m: {t for t in map(_target, names) if t in IMPORTS and t != m} for m, names in IMPORTS.items()}
    reach = {m: _reachable(graph, m) for m in graph}
    folder = {m: m if (PACKAGE.parent / m.replace(".", "/")).is_dir() else m.rsplit(".", 1)[0] for m in IMPORTS}
    circles = {frozenset(n for n in reach[m] if m in reach[n]) for m in graph}  # the strongly connected parts
    assert sorted(sorted(c) for c in circles if len({folder[m] for m in c}) > 1) == []


def test_the_doc_states_the_rules_this_test_checks():
    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    table = doc[doc.index("## Who may import whom"):doc.index("## How a run goes")]
    for room, allowed in ROOMS.items():
        row = next((line for line in table.splitlines() if line.startswith(f"| `{room}`")), None)
        assert row is not None, f"docs/architecture.md has no row for {room}"
        stated = set(re.findall(r"`([a-z_]+)`", row.split("|")[2]))
        assert stated == allowed, (room, stated, allowed)


def test_only_run_folder_names_the_files_of_a_run_folder():
    from mqeval import run_folder

    names = {value for key, value in vars(run_folder).items() if key.endswith(("_NAME", "_DIRNAME"))}
    assert "results.json" in names and len(names) == 8
    spelled = sorted(f"{path.relative_to(PACKAGE)}: {node.value}" for path in PACKAGE.rglob("*.py")
                     if path.name != "run_folder.py"
                     for node in ast.walk(ast.parse(path.read_text()))
                     if isinstance(node, ast.Constant) and node.value in names - {"images"})
    assert spelled == []
