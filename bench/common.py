"""What several bench scripts share: the folders, the reference losses, the machine, the commit, timing and scoring.

Not a script: the scripts import it (``from bench.common import ROOT, git_commit``).  Only the standard
library at import time, so that a script which needs no torch (a figure from saved files) starts quickly.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import resource
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

    from styletransfer.losses import Objective

#: The repository's root (the scripts run from it: ``python -m bench.benchmarks.pairs``).
ROOT = Path(__file__).resolve().parent.parent
#: Data the scripts keep in the repository (the varied set's cached reference losses, a recorded log).
DATA = ROOT / "bench" / "data"
#: Where the scripts write by default (ignored by git).
OUT = ROOT / "bench" / "out"
#: The photos and styles of the varied set (``--images``), outside the repository.
SHARED_IMAGES = ROOT.parent / "shared" / "data" / "images"

#: The tutorial preset's 1000-step seed loss at 512 px on the saved PNG, measured 2026-11-28
#: with the channels-last network of commit 2dbe86e, 2 threads (the seed's own TensorFlow code:
#: 5.318e6; the same preset with the arithmetic of commit e9c2cca: 5.3545e6). See docs/benchmarks.md.
TUTORIAL_FINAL_LOSS = 5.3184e6
#: The seed's own TensorFlow code after its 1000 steps, evaluated on its saved PNG at 512 px.
SEED_FINAL_LOSS = 5.318e6


def git_commit() -> str:
    """The checked-out commit's short hash, or ``"unknown"`` outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def machine_description() -> str:
    """The CPU model, its cores and threads, and whether it has AVX-512, AVX-512-BF16 and AMX tiles."""
    info: dict[str, str] = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"}).stdout
        info = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}
    except OSError:
        pass
    flags = set(info.get("Flags", "").split())
    if not flags and Path("/proc/cpuinfo").is_file():  # no lscpu
        text = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^flags\s*:(.*)$", text, re.M)
        flags = set(found.group(1).split()) if found else set()
        name = re.search(r"^model name\s*:(.*)$", text, re.M)
        if name and not info.get("Model name"):
            info["Model name"] = name.group(1).strip()
    model = info.get("Model name") or platform.processor() or platform.machine()
    cpus = info.get("CPU(s)") or str(os.cpu_count())
    per_core = info.get("Thread(s) per core", "")
    cores = (
        int(info["Core(s) per socket"]) * int(info.get("Socket(s)", "1") or 1)
        if info.get("Core(s) per socket", "").isdigit()
        else None
    )
    core_text = f"{cores} cores, {cpus} logical CPUs" if cores else f"{cpus} logical CPUs"
    if per_core:
        core_text += f" ({per_core} per core)"
    features = ", ".join(
        f"{flag} {'yes' if flag in flags else 'no'}" for flag in ("avx512f", "avx512_bf16", "amx_tile")
    )
    return f"{model}; {core_text}; {features if flags else 'CPU flags unknown'}"


def missing(module: str) -> bool:
    """Whether ``module`` cannot be imported here (an optional peer or extra not installed)."""
    return importlib.util.find_spec(module) is None


def median_seconds(run: Callable[[], object], repeats: int, warmups: int = 1) -> float:
    """The median wall time of ``repeats`` calls of ``run`` after ``warmups`` untimed calls."""
    for _ in range(warmups):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed_loss(image: Tensor, content: Tensor, style: Tensor, size: int) -> dict[str, float]:
    """The seed objective (tutorial weights) of ``image`` rounded to 8 bits, each term and ``total``."""
    import torch  # here, not at the top: see the module's docstring

    from styletransfer.pipeline import build_objective, resolve_settings

    settings = resolve_settings("tutorial", size=size, device="cpu")
    obj = build_objective(settings, content, [style])
    q = (image.clamp(0, 1) * 255).round() / 255
    with torch.no_grad():
        terms = {k: float(v) for k, v in obj.terms(q).items()}
    terms["total"] = terms["style"] + terms["content"] + terms["tv"]
    return terms


#: A loss's terms (as floats) and its gradient with respect to the image.
Evaluated = tuple[dict[str, float], "Tensor"]


def perturbed(image: Tensor) -> Tensor:
    """``0.9 image + 0.05 + 0.02 n`` (``n`` standard normal, seed 0): near ``image``, with no flat regions,
    so that two computations of the network meet no exact max-pool ties (a leaf that requires its gradient)."""
    import torch  # here, not at the top: see the module's docstring

    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(0))
    return (0.9 * image + 0.05 + 0.02 * noise.to(image.device)).requires_grad_(True)


def terms_and_gradient(objective: Objective, image: Tensor) -> Evaluated:
    """One evaluation: ``objective``'s terms at ``image`` and the gradient of their sum."""
    import torch

    terms = objective.terms(image)
    (grad,) = torch.autograd.grad(terms["style"] + terms["content"] + terms["tv"], image)
    return {n: float(t.detach()) for n, t in terms.items()}, grad


def relative_changes(reference: Evaluated, other: Evaluated) -> dict[str, float]:
    """``terms_rel``: the largest relative change of a nonzero term; ``grad_rel``: the gradient's, in Frobenius norm."""
    (a, ga), (b, gb) = reference, other
    return {
        "terms_rel": max(abs(b[n] - a[n]) / abs(a[n]) for n in a if a[n]),
        "grad_rel": float((gb - ga).norm() / ga.norm()),
    }
