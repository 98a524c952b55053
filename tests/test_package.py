"""The package as a user installs it: a wheel holds every subpackage, and the layout
keeps its rules (no import circle, pages never import an experiment, no long module)."""

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "vinet_utils"


def _subpackages() -> set[str]:
    return {".".join(p.parent.relative_to(ROOT).parts) for p in PKG.rglob("__init__.py")}


def test_the_wheel_holds_every_subpackage(tmp_path):
    pytest.importorskip("setuptools")
    src = tmp_path / "src"  # a copy: a build writes build/ and *.egg-info beside the sources
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(PKG, src / "vinet_utils", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "-q", "-w", str(tmp_path), str(src)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next(tmp_path.glob("vinet_utils-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {str(Path(n).parent).replace("/", ".") for n in names if n.endswith("__init__.py")}
    assert {"vinet_utils.oavi", "vinet_utils.report", "vinet_utils.method"} <= _subpackages()
    assert shipped == _subpackages()
    assert "vinet_utils/oavi/_kernels.py" in names


def _imports(path: Path) -> set[str]:
    """The vinet_utils modules ``path`` imports, top-level or inside a function: for
    ``from package import module``, the module, not the package's face."""
    modules = {_module(f) for f in PKG.rglob("*.py")}
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vinet_utils"):
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules
            out.update(subs or {node.module})
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("vinet_utils"))
    return out


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_pages_and_figures_never_import_an_experiment():
    for f in (PKG / "report").rglob("*.py"):
        bad = sorted(m for m in _imports(f) if m.startswith("vinet_utils.experiments"))
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"


def test_no_import_circle():
    modules = {_module(f): f for f in PKG.rglob("*.py")}
    graph = {m: {i for i in _imports(f) if i in modules and i != m} for m, f in modules.items()}
    state = {}

    def visit(m, path):
        state[m] = "open"
        for n in graph[m]:
            if state.get(n) == "open":
                raise AssertionError(" -> ".join(path[path.index(n):] + [n]))
            if n not in state:
                visit(n, path + [n])
        state[m] = "done"

    for m in modules:
        if m not in state:
            visit(m, [m])


def test_no_module_over_500_lines_outside_the_oavi_kernels():
    long = {str(f.relative_to(ROOT)): n for f in PKG.rglob("*.py")
            if (n := len(f.read_text().splitlines())) > 500 and f.name != "_kernels.py"}
    assert not long


def test_no_line_of_code_is_wider_than_120_characters():
    """The package and its tests read without side-scrolling."""
    wide = [f"{f.relative_to(ROOT)}:{i}" for f in [*PKG.rglob("*.py"), *(ROOT / "tests").glob("*.py")]
            for i, line in enumerate(f.read_text().splitlines(), 1) if len(line) > 120]
    assert not wide


def test_no_private_name_is_imported_across_modules():
    """A name that starts with an underscore stays in its module (OAVI's compiled
    kernels, ``oavi._kernels``, are the package's one private module)."""
    found = []
    for f in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vinet_utils"):
                found += [f"{f.relative_to(ROOT)}: {a.name}" for a in node.names
                          if a.name.startswith("_") and a.name != "_kernels"]
    assert not found
