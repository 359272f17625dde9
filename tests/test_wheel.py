"""The package as users install it: a wheel and an sdist built from the checkout, the wheel installed into a fresh venv.

Every other test imports the editable checkout, where a file missing from the
package data (the examples, the studio's static files, the ImageNet class
names) would still be found.  Here the wheel is built with ``python -m build``
from a copy of the tree (so the checkout gains no ``build/`` or egg-info),
installed without ``-e`` into a new venv, and run from a folder outside the
checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from styletransfer.version import DISTRIBUTION, __version__

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "styletransfer"
#: What a copy of the tree leaves out: virtual environments, caches and earlier builds.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"
)


def _package_files() -> set[str]:
    """Every file of the import package in the checkout (code and data), as paths inside a wheel."""
    return {
        p.relative_to(PACKAGE.parent).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build`` (sdist, then the wheel from it) on a copy of the checkout; the folder of both."""
    tree = tmp_path_factory.mktemp("tree") / "src-tree"
    shutil.copytree(ROOT, tree, ignore=NOT_SOURCE)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(tree)], check=True, capture_output=True)
    return out


def _wheel(dist: Path) -> Path:
    (wheel,) = dist.glob("*.whl")
    return wheel


def test_build_names_both_files_by_the_distribution_and_version(dist: Path) -> None:
    written = re.search(r'^version = "([^"]+)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert written is not None and written[1] == __version__  # the installed metadata is this checkout's
    stem = f"{DISTRIBUTION.replace('-', '_')}-{__version__}"
    assert sorted(p.name for p in dist.iterdir()) == [f"{stem}-py3-none-any.whl", f"{stem}.tar.gz"]


def test_wheel_holds_every_package_file_and_no_tests_or_bench(dist: Path) -> None:
    with zipfile.ZipFile(_wheel(dist)) as whl:
        names = set(whl.namelist())
    inside = {n for n in names if ".dist-info/" not in n}
    assert inside == _package_files()
    # The files read at run time, by name, so that a rename shows here too.
    for needed in (
        "styletransfer/py.typed",
        "styletransfer/data/imagenet_classes.json",
        "styletransfer/data/examples/tubingen.jpg",
        "styletransfer/data/examples/starry_night.jpg",
        "styletransfer/web/static/index.html",
        "styletransfer/web/static/app.js",
        "styletransfer/web/static/style.css",
    ):
        assert needed in inside
    assert not any(n.startswith(("tests/", "bench/")) or "/tests/" in n for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    with zipfile.ZipFile(_wheel(dist)) as whl:
        text = whl.read(metadata).decode()
    assert f"Name: {DISTRIBUTION}\n" in text and f"Version: {__version__}\n" in text
    assert "License-Expression: MIT" in text


def test_sdist_holds_the_source_licence_and_changelog(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "src/styletransfer/__init__.py"):
        assert needed in names
    assert {f"src/{n}" for n in _package_files()} <= names
    assert not any(n.startswith(("tests/", "bench/", ".ci/")) for n in names)


@pytest.mark.slow
def test_installed_wheel_runs_from_outside_the_checkout(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"torch=={_torch_version()}", str(_wheel(dist))]
    subprocess.run(pip, check=True, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    command = str(venv / "bin" / "styletransfer")

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([command, *argv], cwd=work, env=env, capture_output=True, text=True, timeout=600)

    version = run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"styletransfer {__version__}"
    demo = run("demo", "--size", "64", "--steps", "3", "-o", "demo.png")
    assert demo.returncode == 0, demo.stderr
    with Image.open(work / "demo.png") as image:
        assert image.size == (64, 48)
    # The package it ran is the installed one, not this checkout.
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import styletransfer; print(styletransfer.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv)


def _torch_version() -> str:
    """The PyTorch this suite runs on (its local build: ``2.13.0+cpu`` installs as ``2.13.0``)."""
    import torch

    return torch.__version__.split("+")[0]
