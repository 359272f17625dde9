"""Tune the early-stopping rule on loss curves recorded by ``bench/benchmarks/pairs.py --stop-window 0 --json F``.

    python -m bench.tuning.pairs_rule bench/out/tune_curves.json
    python -m bench.tuning.pairs_rule bench/out/tune_curves.json --window 50 --rtol 0.005
    python -m bench.tuning.pairs_rule --size 384 --switch-rtol 0.005 curves/*.json   # bf16 runs, fp32 finish

The rule (``Preset.stop_rtol``, ``Preset.stop_window``): with ``b_k`` the
lowest loss of the first ``k`` evaluations, stop after evaluation ``k`` when
``k > w`` and ``b_{k-w} - b_k <= rtol * b_k``.  The rule only truncates a run
(the iterates do not depend on it), so a curve recorded without it tells
where any rule would have stopped and at which loss.  Loss here is the
reported (unrounded) seed loss; ``bench/benchmarks/pairs.py`` scores the saved 8-bit image.

Without ``--window``, prints for a grid of rules the worst ratio to the
tutorial's 1000-step loss and the median and largest number of evaluations
("cap" where a curve ends before the rule fires).

``--switch-rtol R`` reads curves of bf16 runs (``--precision auto`` at 384 px
or more) recorded with ``--stop-rtol 0``: the run went on in bf16 until the
rule ``(switch window, R)`` fired (``BF16_SWITCH_RTOL`` in the pipeline), then
in fp32 with the rule off.  The fp32 part's rule counts its evaluations
afresh and the run returns the fp32 part's best image, so a rule is
simulated on the curve after the switch; the window is the switch's (both
are the preset's ``stop_window``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from bench.benchmarks.pairs import REFERENCE


def best_so_far(curve: list[float]) -> list[float]:
    out: list[float] = []
    for v in curve:
        out.append(min(v, out[-1]) if out else v)
    return out


def stop_at(best: list[float], window: int, rtol: float) -> int | None:
    """The evaluation (1-based) after which the rule stops, or ``None`` if it never fires."""
    for k in range(window + 1, len(best) + 1):
        if best[k - 1 - window] - best[k - 1] <= rtol * best[k - 1]:
            return k
    return None


def simulate(
    curve: list[float], window: int, rtol: float, switch: tuple[int, float] | None = None
) -> tuple[int, float, bool]:
    """Where a run with the rule ``(window, rtol)`` ends: ``(evaluations, its best loss, whether the rule fired)``.

    With ``switch = (switch window, switch rtol)``, the curve is a bf16 run
    that switched to fp32 where that rule fired, and the rule under test
    applies to the fp32 part alone (see the module's docstring).
    """
    best = best_so_far(curve)
    start = stop_at(best, *switch) if switch is not None else None
    if start is not None:
        best = best_so_far(curve[start:])
    k = stop_at(best, window, rtol)
    kk = k or len(best)
    return (start or 0) + kk, best[kk - 1], k is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("curves", nargs="+", type=Path)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--window", type=int, default=None)
    parser.add_argument("--rtol", type=float, default=None)
    parser.add_argument(
        "--switch-rtol", type=float, default=None, help="the curves are bf16 runs that switched at this"
    )
    parser.add_argument("--switch-window", type=int, default=50, help="the window of the switch (the preset's)")
    args = parser.parse_args(argv)
    switch = None if args.switch_rtol is None else (args.switch_window, args.switch_rtol)
    ref = json.loads(REFERENCE.read_text())
    rows = [r for f in args.curves for r in json.loads(f.read_text())]
    for r in rows:
        r["best"] = best_so_far(r["curve"])
        r["tut"] = ref[f"{r['pair']}@{args.size}"]["loss"]
        reach = next((k + 1 for k, v in enumerate(r["best"]) if v <= r["tut"]), None)
        print(
            f"{r['pair']}: tutorial {r['tut']:.4g}; reached at evaluation {reach}; "
            f"{len(r['best'])} evaluations recorded, last {r['best'][-1]:.4g}"
        )
    if args.window is not None:
        print("\n| pair | stop at | loss | ratio |")
        print("|---|---|---|---|")
        for r in rows:
            k, loss, fired = simulate(r["curve"], args.window, args.rtol, switch)
            print(f"| {r['pair']} | {k if fired else 'cap'} | {loss:.4g} | {loss / r['tut']:.3f} |")
        return 0
    if switch is not None:
        k0s = [stop_at(r["best"], *switch) for r in rows]
        print("switched to fp32 after: " + ", ".join(f"{r['pair']} {k}" for r, k in zip(rows, k0s)))
    print("\n| window | rtol | worst ratio | median evaluations | most evaluations |")
    print("|---|---|---|---|---|")
    windows = (25, 50, 100) if switch is None else (args.switch_window,)
    for window in windows:
        for rtol in (0.02, 0.01, 0.0075, 0.005, 0.004, 0.003, 0.0025, 0.002, 0.0015, 0.001):
            ends = [simulate(r["curve"], window, rtol, switch) for r in rows]
            worst = max(loss / r["tut"] for (_, loss, _), r in zip(ends, rows))
            ks = [k for k, _, _ in ends]
            most = "cap" if not all(fired for _, _, fired in ends) else str(max(ks))
            print(f"| {window} | {rtol} | {worst:.3f} | {statistics.median(ks):.0f} | {most} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
