"""The projected L-BFGS: the [0, 1] box kept exactly, no value stuck on a bound, and the early stop."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from styletransfer.losses import Weights
from styletransfer.optimize import LbfgsConfig, Progress, Reporter, run_lbfgs
from styletransfer.pipeline import resolve_settings, stylize_tensor


class Quadratic:
    """A stand-in objective: ``offset + sum w (A x - t)^2 / 2`` reported as its "style" term, no TV.

    ``A`` is given as a function of the image (linear), so coupled problems can be built.
    """

    def __init__(self, target: Tensor, weight: Tensor, offset: float = 0.0, mix=None) -> None:
        self.target, self.weight, self.offset = target, weight, offset
        self.mix = mix if mix is not None else (lambda x: x)
        self.weights = Weights(style=1.0, content=1.0, tv=0.0)

    def terms(self, x: Tensor) -> dict[str, Tensor]:
        r = self.mix(x) - self.target
        zero = x.sum() * 0
        return {"style": 0.5 * (self.weight * r * r).sum() + self.offset, "content": zero, "tv": zero}


def _run(objective: Quadratic, init: Tensor, evaluations: int, curvature=None, **kw) -> tuple[Tensor, list[Progress]]:
    seen: list[Progress] = []
    out = run_lbfgs(
        objective, init, evaluations, Reporter(evaluations, seen.append), LbfgsConfig(**kw), curvature=curvature
    )
    return out, seen


def test_optimum_partly_on_the_bounds_is_found_and_the_box_is_kept() -> None:
    torch.manual_seed(0)
    shape = (1, 3, 6, 5)
    target = torch.empty(shape, dtype=torch.float64).uniform_(-1.5, 2.5)  # about 3/8 below 0, 3/8 inside, 1/4 above 1
    weight = torch.empty(shape, dtype=torch.float64).uniform_(0.1, 10.0)  # ill-conditioned
    seen_images: list[Tensor] = []
    objective = Quadratic(target, weight)
    out, seen = _run(objective, torch.full(shape, 0.5, dtype=torch.float64), 200)
    seen_images = [p.tensor() for p in seen]
    assert all(float(x.min()) >= 0.0 and float(x.max()) <= 1.0 for x in seen_images)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    torch.testing.assert_close(out, target.clamp(0.0, 1.0), atol=1e-6, rtol=0)
    assert bool((out[target < 0] == 0).all()) and bool((out[target > 1] == 1).all())


def _coupled() -> tuple[Quadratic, Tensor, Tensor]:
    """``f = 50 (x1 - x2 + 0.3)^2 + 0.5 (x2 - 0.9)^2`` per pair, from ``x1 = x2 = 0``.

    At the start ``x1``'s gradient pushes it below 0 (its best value there is
    ``x2 - 0.3 = -0.3``); as ``x2`` grows towards 0.9 the gradient turns and the
    optimum is ``x1 = 0.6``, inside the box.  With ``x = clamp(z, 0, 1)`` the
    first step sends ``z1`` below 0, where its gradient is zero for good: ``x1``
    stays at 0.
    """
    n = 4

    def mix(x: Tensor) -> Tensor:
        x1, x2 = x[..., :n], x[..., n:]
        return torch.cat([x1 - x2, x2], dim=-1)

    target = torch.cat([torch.full((1, 1, 1, n), -0.3), torch.full((1, 1, 1, n), 0.9)], dim=-1)
    weight = torch.cat([torch.full((1, 1, 1, n), 100.0), torch.full((1, 1, 1, n), 1.0)], dim=-1)
    optimum = torch.cat([torch.full((1, 1, 1, n), 0.6), torch.full((1, 1, 1, n), 0.9)], dim=-1)
    return Quadratic(target, weight, mix=mix), torch.zeros(1, 1, 1, 2 * n), optimum


def test_a_value_on_the_bound_leaves_it_when_its_gradient_turns_inward() -> None:
    objective, init, optimum = _coupled()
    out, seen = _run(objective, init, 100)
    # x1 starts at 0 with its gradient pointing out of the box, then comes back in.
    torch.testing.assert_close(out, optimum, atol=1e-3, rtol=0)
    assert float(out[..., :4].min()) > 0.5
    assert min(p.loss for p in seen) < 1e-5


def test_the_stopping_rule_stops_a_converged_run_early() -> None:
    torch.manual_seed(1)
    shape = (1, 3, 4, 4)
    target = torch.empty(shape).uniform_(0.2, 0.8)
    objective = Quadratic(target, torch.empty(shape).uniform_(1.0, 3.0), offset=10.0)
    rtol, window = 1e-6, 5
    out, seen = _run(objective, torch.zeros(shape), 300, stop_rtol=rtol, stop_window=window)
    assert window < len(seen) < 300
    best = [min(p.loss for p in seen[:k]) for k in range(1, len(seen) + 1)]

    def holds(k: int) -> bool:  # k evaluations done
        return k > window and best[k - 1 - window] - best[k - 1] <= rtol * best[k - 1]

    assert holds(len(seen)) and not any(holds(k) for k in range(1, len(seen)))
    torch.testing.assert_close(out, target, atol=2e-3, rtol=0)


def test_the_stopping_rule_respects_the_cap() -> None:
    torch.manual_seed(2)
    shape = (1, 3, 8, 8)
    objective = Quadratic(torch.empty(shape).uniform_(-1, 2), torch.empty(shape).uniform_(0.01, 100.0), offset=1.0)
    for cap in (1, 2, 9):
        _, seen = _run(objective, torch.full(shape, 0.5), cap, stop_rtol=1e-9, stop_window=3)
        assert [p.step for p in seen] == list(range(1, cap + 1))


def test_the_preset_fields_reach_the_optimiser(tiny_pair: tuple[Path, Path]) -> None:
    content, style = tiny_pair
    seen: list[Progress] = []
    # A loose rule (a 90% fall needed over 2 evaluations) stops long before the cap.
    settings = resolve_settings("fast", size=32, steps=40, stop_rtol=0.9, stop_window=2, device="cpu")
    stylize_tensor(content, style, settings, callback=seen.append)
    assert 2 < len(seen) < 40 and seen[-1].total == 40


def test_a_dark_image_stays_in_the_box_and_does_not_stick_at_zero(tiny_pair: tuple[Path, Path]) -> None:
    from styletransfer.images import load_img

    content, style = tiny_pair
    dark = (0.55 * load_img(content, 48).pow(2.4) - 0.03).clamp(0.0, 1.0)
    assert float((dark == 0).float().mean()) > 0.1
    settings = resolve_settings("fast", size=48, steps=30, device="cpu")
    seen: list[Progress] = []
    out = stylize_tensor(dark, style, settings, callback=seen.append)
    assert all(float(p.tensor().min()) >= 0.0 and float(p.tensor().max()) <= 1.0 for p in seen)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert float((out == 0).float().mean()) < float((dark == 0).float().mean())
    assert math.isfinite(seen[-1].loss)


def test_lowpass_boost_is_symmetric_positive_definite_and_boosts_broad_changes() -> None:
    """``P = I + gain sum_k G_k``: symmetric, ``q.P q >= q.q``, a broad change x(1 + gain k), a checkerboard x1."""
    from styletransfer.optimize import LowPassBoost

    torch.manual_seed(0)
    p = LowPassBoost(10.0, [2.0, 6.0])
    q, r = torch.randn(2, 3, 40, 52, dtype=torch.float64).chunk(2)
    qpr, rpq = float((q * p(r)).sum()), float((r * p(q)).sum())
    assert abs(qpr - rpq) <= 1e-6 * abs(qpr)  # float32 FFTs
    assert float((q * p(q)).sum()) >= float((q * q).sum())
    flat = torch.full((1, 3, 40, 52), 0.5, dtype=torch.float64)
    assert abs(float(p(flat)[0, 0, 20, 26]) - 0.5 * 21) < 0.01  # 3 sigma from the border: both blurs keep it
    checker = (torch.arange(40).view(-1, 1) + torch.arange(52).view(1, -1)) % 2 * 2.0 - 1.0
    checker = checker.expand(1, 3, 40, 52).to(torch.float64)
    inner = (slice(None), slice(None), slice(10, 30), slice(10, 42))
    torch.testing.assert_close(p(checker)[inner], checker[inner], atol=2e-3, rtol=0)  # gain 1 + 1e-3 at most
    assert torch.equal(LowPassBoost(0.0, [2.0])(q), q)


class Smoothness:
    """``f = sum eps (x - t)^2 / 2 + mu |grad (x - t)|^2 / 2``: stiff in fine detail, nearly flat in broad changes."""

    def __init__(self, target: Tensor, eps: float = 0.01, mu: float = 10.0) -> None:
        self.target, self.eps, self.mu = target, eps, mu
        self.weights = Weights(style=1.0, content=1.0, tv=0.0)

    def terms(self, x: Tensor) -> dict[str, Tensor]:
        r = x - self.target
        dy, dx = r[..., 1:, :] - r[..., :-1, :], r[..., :, 1:] - r[..., :, :-1]
        style = 0.5 * self.eps * (r * r).sum() + 0.5 * self.mu * ((dy * dy).sum() + (dx * dx).sum())
        zero = x.sum() * 0
        return {"style": style, "content": zero, "tv": zero}


def test_the_lowpass_preconditioner_moves_broad_changes_sooner() -> None:
    """On a problem flat in broad changes, ``H_0 = tau P`` gets far lower in the same evaluations than ``tau I``."""
    from styletransfer.optimize import LowPassBoost

    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 48), indexing="ij")
    target = (0.2 + 0.3 * xx + 0.3 * yy).expand(1, 3, 32, 48).to(torch.float64)  # a broad ramp, inside the box
    objective = Smoothness(target)
    start = torch.full_like(target, 0.5)
    plain, seen_plain = _run(objective, start, 20, tv_eps=0.0)
    boosted, seen_boosted = _run(objective, start, 20, tv_eps=0.0, precondition=LowPassBoost(10.0, [2.0, 8.0]))
    assert len(seen_plain) == len(seen_boosted) == 20
    f_plain, f_boosted = (float(objective.terms(x)["style"]) for x in (plain, boosted))
    assert f_boosted < 0.05 * f_plain  # measured: 0.0024 against 0.61


def test_a_run_goes_on_from_the_curvature_an_earlier_run_learnt() -> None:
    """Two runs of 20 then 10 evaluations sharing one curvature list get lower than with a fresh second run.

    The second run starts from the first one's best image; with the shared
    list its first step is already a quasi-Newton step, not steepest descent.
    """
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 16), torch.linspace(0, 1, 24), indexing="ij")
    target = (0.2 + 0.3 * xx + 0.3 * yy).expand(1, 3, 16, 24).to(torch.float64)
    objective = Smoothness(target)
    start = torch.full_like(target, 0.5)
    memory: list = []
    middle, _ = _run(objective, start, 20, tv_eps=0.0, curvature=memory)
    assert 0 < len(memory) <= 50 and all(rho > 0 for _, _, rho in memory)
    learnt = len(memory)
    fresh, _ = _run(objective, middle, 10, tv_eps=0.0)
    kept, _ = _run(objective, middle, 10, tv_eps=0.0, curvature=memory)
    assert len(memory) > learnt  # the second run added its pairs to the same list
    f_middle, f_fresh, f_kept = (float(objective.terms(x)["style"]) for x in (middle, fresh, kept))
    assert f_fresh < f_middle
    assert f_kept < 0.5 * f_fresh  # measured: 0.0092 against 0.037 (from 0.105)


def test_the_history_limit_holds_for_a_list_handed_in() -> None:
    torch.manual_seed(1)
    target = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    objective = Smoothness(target)
    memory: list = []
    _run(objective, torch.full_like(target, 0.5), 30, tv_eps=0.0, history=20, curvature=memory)
    _run(objective, torch.full_like(target, 0.5), 5, tv_eps=0.0, history=3, curvature=memory)
    assert len(memory) <= 3
