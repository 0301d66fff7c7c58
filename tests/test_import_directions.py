"""The import directions of docs/architecture.md that hold today, read from the source (imports under
`if TYPE_CHECKING:` are annotations only and are not counted)."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mqeval"
GROUND = {"errors", "dataclass_io", "registry", "paths", "fileio", "downloads", "hub_download", "seeding", "extras",
          "environment"}


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
