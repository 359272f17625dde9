"""The architecture, checked: imports point down the layers, the bottom is torch-free, nothing below the runner prints.

Layers, bottom to top (docs/architecture.md): the torch-free bottom (errors,
options, presets, the layer table, file helpers); the core (images, network,
losses, optimisers, colour, memory, inspection); the pipeline; the job runner
and its observers; the front ends (the Python API, the CLI).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "styletransfer"

LAYERS: dict[str, int] = {
    **dict.fromkeys(["errors", "options", "presets", "architecture", "fileio"], 0),
    **dict.fromkeys(
        [
            "images",
            "vgg",
            "losses",
            "optimize",
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
    "pipeline": 2,
    **dict.fromkeys(["jobs", "observers", "manifest"], 3),
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


def _modules() -> list[str]:
    return sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__") + _subpackage_modules()


def _path(module: str) -> Path:
    flat = PACKAGE / (module.replace(".", "/") + ".py")
    return flat if flat.exists() else PACKAGE / module.replace(".", "/") / "__init__.py"


def _package_of(module: str) -> list[str]:
    """The package a module's relative imports start from (``[]`` for the top level)."""
    parts = module.split(".")
    return parts if _path(module).name == "__init__.py" else parts[:-1]


def _imports(module: str) -> tuple[set[str], set[str]]:
    """The package modules ``module`` imports (at any depth of the file), and the outside packages."""
    tree = ast.parse(_path(module).read_text())
    inside, outside = set(), set()
    package = _package_of(module)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            base = package[: len(package) - (node.level - 1)]
            names = (
                [".".join([*base, *node.module.split(".")])]
                if node.module
                else [".".join([*base, a.name]) for a in node.names]
            )
            for name in names:
                parts = name.split(".")
                found = next(
                    (".".join(parts[:k]) for k in range(len(parts), 0, -1) if ".".join(parts[:k]) in LAYERS), None
                )
                if found is not None:
                    inside.add(found)
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
