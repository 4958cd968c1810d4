"""Fast start: `gdrepro --help`, the declarations and every paper's prepare/evaluate/figures jobs load
only what they use (torch only in the per-seed stage that trains); no import cycles; low-level
modules never import the paper registry."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

import pytest

from gdrepro import papers
from tests.conftest import ROOT

HEAVY = ("numpy", "scipy", "torch", "mlflow", "matplotlib", "snakemake", "pandas", "sklearn")
REGISTRY_IMPORT = re.compile(r"^\s*(from gdrepro import .*\bpapers\b|from gdrepro\.papers\b|import gdrepro\.papers)", re.M)


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(m for m in sys.modules if '.' not in m)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_help_and_declarations_load_no_heavy_library():
    code = ("import contextlib, io\nfrom gdrepro import cli, papers\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    cli.main(['--help'])\n"
            "[papers.get(s) for s in papers.SLUGS]")
    assert loaded_after(code).isdisjoint(HEAVY)


@pytest.mark.parametrize("slug", papers.SLUGS)
def test_a_papers_non_training_jobs_load_no_torch_or_mlflow(slug):
    code = (f"from gdrepro import cli, papers, stages, figures\npaper = papers.get('{slug}')\n"
            "paper.experiment\n[paper.resolve(f.draw) for f in paper.figures]")
    assert loaded_after(code).isdisjoint({"torch", "mlflow", "snakemake"})


def module_imports() -> dict[str, set[str]]:
    """``gdrepro.x -> {gdrepro.y, ...}`` for imports at module level (not inside functions)."""
    package = ROOT / "src" / "gdrepro"
    graph = {}
    for path in package.rglob("*.py"):
        name = ".".join(path.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__")
        deps = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            for sub in ast.walk(node) if isinstance(node, (ast.Import, ast.ImportFrom, ast.If, ast.Try)) else []:
                if isinstance(sub, ast.Import):
                    deps |= {a.name for a in sub.names}
                elif isinstance(sub, ast.ImportFrom) and sub.module:
                    deps |= {sub.module} | {f"{sub.module}.{a.name}" for a in sub.names}
        graph[name] = {d for d in deps if d.startswith("gdrepro")}
    return {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}


def test_no_import_cycles():
    graph = module_imports()
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                pytest.fail("import cycle: " + " -> ".join(path[path.index(dep):] + [module, dep]))
            if dep not in state:
                visit(dep, path + [module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_low_level_modules_never_import_the_paper_registry():
    low = ("layout", "paper", "runs", "data", "datasets", "external", "kernels", "runtime", "tables",
           "checkpoint", "metrics", "tracking", "config", "errors", "gpu_slots", "plotting", "nn", "claims")
    for name in low:
        source = (ROOT / "src" / "gdrepro" / f"{name}.py").read_text()
        assert not REGISTRY_IMPORT.search(source), name
