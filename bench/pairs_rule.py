"""Tune the early-stopping rule on loss curves recorded by ``bench/pairs.py --stop-window 0 --json F``.

    python bench/pairs_rule.py bench/out/tune_curves.json
    python bench/pairs_rule.py bench/out/tune_curves.json --window 50 --rtol 0.005

The rule (``Preset.stop_rtol``, ``Preset.stop_window``): with ``b_k`` the
lowest loss of the first ``k`` evaluations, stop after evaluation ``k`` when
``k > w`` and ``b_{k-w} - b_k <= rtol * b_k``.  The rule only truncates a run
(the iterates do not depend on it), so a curve recorded without it tells
where any rule would have stopped and at which loss.  Loss here is the
reported (unrounded) seed loss; ``bench/pairs.py`` scores the saved 8-bit image.

Without ``--window``, prints for a grid of rules the worst ratio to the
tutorial's 1000-step loss and the median and largest number of evaluations
("cap" where a curve ends before the rule fires).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pairs import REFERENCE  # noqa: E402


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("curves", nargs="+", type=Path)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--window", type=int, default=None)
    parser.add_argument("--rtol", type=float, default=None)
    args = parser.parse_args(argv)
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
            k = stop_at(r["best"], args.window, args.rtol)
            kk = k or len(r["best"])
            print(f"| {r['pair']} | {k or 'cap'} | {r['best'][kk - 1]:.4g} | {r['best'][kk - 1] / r['tut']:.3f} |")
        return 0
    print("\n| window | rtol | worst ratio | median evaluations | most evaluations |")
    print("|---|---|---|---|---|")
    for window in (25, 50, 100):
        for rtol in (0.02, 0.01, 0.0075, 0.005, 0.003, 0.002):
            stops = [stop_at(r["best"], window, rtol) for r in rows]
            ks = [k or len(r["best"]) for k, r in zip(stops, rows)]
            worst = max(r["best"][k - 1] / r["tut"] for k, r in zip(ks, rows))
            most = "cap" if any(k is None for k in stops) else str(max(ks))
            print(f"| {window} | {rtol} | {worst:.3f} | {statistics.median(ks):.0f} | {most} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
