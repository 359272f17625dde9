"""Ways to keep the image in [0, 1] under L-BFGS, compared on the pairs of ``bench/benchmarks/pairs.py``.

    python -m bench.tuning.box_candidates --pair dark_tubingen-frida --method project clamp straight reflect

Methods (each the seed objective with the smoothed TV, the same budget of
evaluations, no early stop; the reported loss is the exact seed loss of the
best evaluated image rounded to 8 bits):

- ``clamp``: the old default: ``torch.optim.LBFGS`` (strong Wolfe) on an
  unconstrained ``z``, image ``x = clamp(z, 0, 1)``; a value whose ``z`` left
  the box gets a zero gradient.
- ``straight``: the same, with a straight-through clamp: forward ``clamp(z)``,
  backward the gradient passed to ``z`` unchanged.
- ``reflect``: the same, with ``x`` the triangle wave of ``z`` (``z`` folded
  into [0, 1] by reflection at the bounds), whose slope is +-1 everywhere.
- ``project``: the projected L-BFGS of :func:`styletransfer.optimize.run_lbfgs`.

Prints one JSON line per run (loss, style term, fractions at 0 and 1, wall
time, the best loss every 50 evaluations).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from pathlib import Path

import torch
from torch import Tensor

from bench.benchmarks.pairs import PAIRS, bounds_fractions, pair_images
from bench.common import SHARED_IMAGES, seed_loss
from styletransfer.images import save_image
from styletransfer.losses import smooth_total_variation
from styletransfer.optimize import LbfgsConfig, Reporter, run_lbfgs
from styletransfer.pipeline import build_objective, resolve_settings


class _StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z: Tensor) -> Tensor:  # type: ignore[override]
        return z.clamp(0.0, 1.0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return grad


class _Reflect(torch.autograd.Function):
    """``x = 1 - |1 - (z mod 2)|``, with slope +1 on [2k, 2k+1) and -1 on [2k+1, 2k+2)."""

    @staticmethod
    def forward(ctx, z: Tensor) -> Tensor:  # type: ignore[override]
        m = torch.remainder(z, 2.0)
        ctx.save_for_backward(m)
        return 1.0 - (1.0 - m).abs()

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (m,) = ctx.saved_tensors
        return torch.where(m < 1.0, grad, -grad)


BOXES = {
    "clamp": lambda z: z.clamp(0.0, 1.0),
    "straight": _StraightThrough.apply,
    "reflect": _Reflect.apply,
}


class _Spent(Exception):
    pass


def run_torch_lbfgs(
    objective, init: Tensor, evaluations: int, report: Reporter, box, history: int = 50, tv_eps: float = 0.01
) -> Tensor:
    """The old ``run_lbfgs``: torch's L-BFGS on ``z`` with ``x = box(z)``; returns the best image."""
    z = init.detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [z],
        lr=1.0,
        max_iter=evaluations,
        max_eval=evaluations,
        history_size=history,
        line_search_fn="strong_wolfe",
        tolerance_grad=0.0,
        tolerance_change=0.0,
    )
    best = [math.inf, init.detach().clone()]

    def closure() -> Tensor:
        if report.step >= evaluations:
            raise _Spent
        opt.zero_grad()
        x = box(z)
        terms = objective.terms(x)
        loss = report(terms, x)
        if loss < best[0]:
            best[:] = [loss, x.detach().clone()]
        total = terms["style"] + terms["content"] + objective.weights.tv * smooth_total_variation(x, tv_eps)
        total.backward()
        return total

    with contextlib.suppress(_Spent):
        opt.step(closure)
    return best[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=SHARED_IMAGES)
    parser.add_argument("--pair", default="dark_tubingen-frida")
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--evaluations", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--method", nargs="+", default=["project", "clamp", "straight", "reflect"])
    parser.add_argument(
        "--save", type=Path, default=None, help="save each result as DIR/PAIR_SIZE_METHOD_EVALUATIONS.png"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    pair = next(p for p in PAIRS if p.name.startswith(args.pair))
    content, style = pair_images(pair, args.images, args.size)
    settings = resolve_settings("fast", size=args.size, device="cpu")
    objective = build_objective(settings, content, [style])
    for method in args.method:
        curve: list[float] = []
        report = Reporter(
            args.evaluations, lambda p, curve=curve: curve.append(min(p.loss, curve[-1]) if curve else p.loss)
        )
        start = time.perf_counter()
        if method == "project":
            image = run_lbfgs(objective, content, args.evaluations, report, LbfgsConfig(history=50, tv_eps=0.01))
        else:
            image = run_torch_lbfgs(objective, content, args.evaluations, report, BOXES[method])
        wall = time.perf_counter() - start
        if args.save is not None:
            args.save.mkdir(parents=True, exist_ok=True)
            save_image(image, args.save / f"{pair.name}_{args.size}_{method}_{args.evaluations}.png")
        terms = seed_loss(image, content, style, args.size)
        zeros, ones = bounds_fractions(image)
        row = {
            "pair": pair.name,
            "size": args.size,
            "method": method,
            "evaluations": len(curve),
            "loss": terms["total"],
            "style": terms["style"],
            "zeros": zeros,
            "ones": ones,
            "wall_s": round(wall, 1),
            "curve": {k: curve[k - 1] for k in range(50, len(curve) + 1, 50)},
        }
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
