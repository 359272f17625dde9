"""The architecture, checked: imports point down the layers, the bottom is torch-free, nothing below the runner prints.

Layers, bottom to top (docs/architecture.md): the torch-free bottom (errors,
options, presets, the layer table, file helpers); the core (images, network,
losses, optimisers, colour, memory, inspection); the pipeline; the job runner
and its observers; the front ends (the Python API, the CLI).
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "styletransfer"

LAYERS: dict[str, int] = {
    **dict.fromkeys(
        ["errors", "options", "front_options", "presets", "vgg_layers", "fileio", "folder_lock", "version"], 0
    ),
    **dict.fromkeys(
        [
            "images",
            "vgg",
            "winograd",
            "losses",
            "optimize",
            "tiling",
            "color",
            "memory",
            "inspection",
            "figures",
            "classifier",
            "display",
            "examples",
        ],
        1,
    ),
    "masks": 1,
    **dict.fromkeys(["pipeline", "driver"], 2),
    **dict.fromkeys(["job", "events", "runner", "observers", "manifest"], 3),
    **dict.fromkeys(["api", "cli", "__main__"], 4),
}
RUNNER = 3
FRONT_ENDS = 4


def _subpackage_modules() -> list[str]:
    """Modules of the front ends' subpackages (``batch``, ``batch.worker``...): all layer 4."""
    found = []
    for p in PACKAGE.glob("*/**/*.py"):
        parts = list(p.relative_to(PACKAGE).with_suffix("").parts)
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(found)


LAYERS.update(dict.fromkeys(_subpackage_modules(), FRONT_ENDS))
# the instant networks (their weights, the two networks, one pass), the optimisers' and the tiling's rooms are core; the
# pipeline's rooms are the pipeline's layer
LAYERS.update(dict.fromkeys((m for m in _subpackage_modules() if m.split(".")[0] == "instant"), 1))
LAYERS.update(dict.fromkeys((m for m in _subpackage_modules() if m.split(".")[0] == "pipeline"), 2))
LAYERS.update(dict.fromkeys((m for m in _subpackage_modules() if m.split(".")[0] == "optimize"), 1))
LAYERS.update(dict.fromkeys((m for m in _subpackage_modules() if m.split(".")[0] == "tiling"), 1))


def _modules() -> list[str]:
    """Every module, as a dotted name below the package (``cli``, ``web.server``; a subpackage is its ``__init__``)."""
    found = []
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            found.append(".".join(parts))
    return sorted(found)


def _path(module: str) -> Path:
    path = PACKAGE / (module.replace(".", "/") + ".py")
    return path if path.is_file() else PACKAGE / module.replace(".", "/") / "__init__.py"


def _resolve(parts: list[str]) -> str:
    """The longest dotted prefix of ``parts`` that is a module of the table."""
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return ".".join(parts[:n])
    return ".".join(parts)


def _imports(module: str) -> tuple[set[str], set[str]]:
    """The package modules ``module`` imports (at any depth of the file), and the outside packages."""
    path = _path(module)
    tree = ast.parse(path.read_text())
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    inside, outside = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            base = package[: len(package) - (node.level - 1)]
            if node.module:
                inside.add(_resolve(base + node.module.split(".")))
            else:
                inside.update(m for a in node.names if (m := _resolve([*base, a.name])) in LAYERS)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            outside.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            outside.update(a.name.split(".")[0] for a in node.names)
    return inside, outside


def test_every_module_has_a_layer() -> None:
    assert set(_modules()) == set(LAYERS)


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_imports_point_down(module: str) -> None:
    inside, _ = _imports(module)
    upward = {m for m in inside if LAYERS[m] > LAYERS[module]}
    assert not upward, f"{module} (layer {LAYERS[module]}) imports {upward} from above"


def test_no_import_cycles_counting_imports_inside_functions() -> None:
    """A module never reaches itself through the package's imports, wherever in a file they stand."""
    graph = {m: {i for i in _imports(m)[0] if i in LAYERS and i != m} for m in LAYERS}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


@pytest.mark.parametrize("module", sorted(m for m, layer in LAYERS.items() if layer == 0))
def test_the_bottom_is_torch_free(module: str) -> None:
    _, outside = _imports(module)
    assert not outside & {"torch", "numpy", "PIL", "matplotlib"}, outside


@pytest.mark.parametrize("module", sorted(m for m, layer in LAYERS.items() if layer < RUNNER or layer == RUNNER))
def test_nothing_below_the_front_ends_prints_handles_signals_or_reads_argv(module: str) -> None:
    tree = ast.parse(_path(module).read_text())
    _, outside = _imports(module)
    assert "signal" not in outside and "argparse" not in outside and "tqdm" not in outside
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "print", f"{module} prints (line {node.lineno})"
        if isinstance(node, ast.Attribute) and node.attr == "argv":
            raise AssertionError(f"{module} reads sys.argv (line {node.lineno})")


def test_ci_runs_the_readmes_test_command() -> None:
    root = PACKAGE.parents[1]
    readme = (root / "README.md").read_text()
    section = readme[readme.index("Set up and run the checks and the tests") :]
    start = section.index("```bash\n") + len("```bash\n")
    command = section[start : section.index("\n```", start)]
    assert command.startswith("python3 -m venv .venv") and "pytest" in command
    assert command in (root / ".ci" / "run").read_text().splitlines()


def test_the_lazy_exports_are_listed_and_typed() -> None:
    """``styletransfer.__all__`` lists the lazy exports, each resolves, and each is in the TYPE_CHECKING imports."""
    import styletransfer

    lazy = styletransfer._EXPORTS
    assert set(styletransfer.__all__) == set(lazy) | {"__version__"}
    typed = (PACKAGE / "__init__.py").read_text().split("if TYPE_CHECKING:")[1].split("\n\n")[0]
    for name, module in lazy.items():
        assert getattr(importlib.import_module(f"styletransfer.{module}"), name) is getattr(styletransfer, name)
        assert re.search(rf"from \.{module} import [^\n]*\b{name}\b", typed) or re.search(
            rf"from \.{module} import \((?:[^)]*\n)*?\s+{name},", typed
        ), f"{name} has no TYPE_CHECKING import from .{module}"
