"""examples/tutorial.ipynb: valid JSON, imports only the public API, and runs (tiny parameters)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import styletransfer
from styletransfer import display

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "tutorial.ipynb"


def _code_cells() -> list[dict]:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def test_notebook_imports_only_the_public_api() -> None:
    imported: set[str] = set()
    for cell in _code_cells():
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            if isinstance(node, ast.Import):
                assert all(alias.name == "styletransfer" for alias in node.names), ast.unparse(node)
            elif isinstance(node, ast.ImportFrom):
                assert node.module == "styletransfer" and node.level == 0, ast.unparse(node)
                imported.update(alias.name for alias in node.names)
    assert imported and imported <= set(styletransfer.__all__), imported - set(styletransfer.__all__)


def test_notebook_runs_with_tiny_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cells = _code_cells()
    assert cells[0]["metadata"].get("tags") == ["parameters"]
    shown: list[object] = []
    monkeypatch.setattr(display, "show", lambda *items: shown.extend(items))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec("SIZE = 32\nPRESET = 'tutorial'\nSTEPS = 3\n", namespace)
    for cell in cells[1:]:
        exec(compile("".join(cell["source"]), str(NOTEBOOK), "exec"), namespace)
    assert (tmp_path / "stylized.png").exists()
    assert len(shown) == 5  # inputs, progress sheet, loss curve, high-pass grid, Sobel edges
