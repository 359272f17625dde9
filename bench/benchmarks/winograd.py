"""Benchmark: Winograd F(m x m, 3x3) against PyTorch's convolution, per VGG19 layer and per evaluation.

    python -m bench.benchmarks.winograd               # 512 and 256 px, 1 and 2 threads
    python -m bench.benchmarks.winograd --sizes 512 --threads 2 --repeats 5 --no-layers
    python -m bench.benchmarks.winograd --sizes 512 1024 --threads 2 --in-run 60 --min-channels 128 256 --band-mib 8 64

Per layer (every convolution the seed's losses reach, ``block1_conv1`` to
``block5_conv2``, on a square ``size x size`` image): one forward and one
backward to the input (the weights are frozen), for

- ``std cl``: ``F.conv2d`` on channels-last tensors (what ``vgg.py`` runs);
- ``std nchw``: ``F.conv2d`` on contiguous tensors;
- ``W2``, ``W4``, ``W6``: :func:`styletransfer.winograd.winograd_conv2d` with
  F(2x2, 3x3), F(4x4, 3x3), F(6x6, 3x3).

Per evaluation: the ``fast`` preset's objective (Tübingen x The Starry Night at
``size``), loss and backward to the image, with the network's Winograd layers
(:data:`styletransfer.vgg.WINOGRAD_MIN_CHANNELS` at each thread count asked for,
or each ``--min-channels`` threshold, in bands of each ``--band-mib``) on and off.

With ``--in-run N``: the same configurations inside one real run of the
default (:func:`in_run`), taking turns every ``--block`` evaluations: what a
user's run gets, which the bare evaluations can overstate.

The candidates are interleaved in one process and each time is the median of
``--repeats`` rounds, so that the ratios hold on a shared, noisy CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.common import Evaluated, perturbed, relative_changes, terms_and_gradient
from styletransfer import vgg as network
from styletransfer import winograd
from styletransfer.api import stylize
from styletransfer.examples import example_path
from styletransfer.images import load_img
from styletransfer.optimize import Progress
from styletransfer.pipeline import build_objective, resolve_settings
from styletransfer.presets import FAST
from styletransfer.vgg import WINOGRAD_MIN_CHANNELS
from styletransfer.vgg_layers import LAYERS
from styletransfer.winograd import WinogradConv, winograd_conv2d

#: The last layer the seed's losses reach (its content layer).
LAST_LAYER = "block5_conv2"


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else ``"?"``."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        return "?"


def medians(candidates: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Milliseconds per call of each candidate: one warm-up, then the median of ``repeats`` interleaved rounds."""
    for run in candidates.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            times[name].append(1000 * (time.perf_counter() - start))
    return {name: statistics.median(t) for name, t in times.items()}


def forward_backward(conv: Callable[[Tensor], Tensor], x: Tensor, grad: Tensor) -> Tensor:
    """One forward and one backward to the input."""
    x = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(conv(x), x, grad)
    return g


def layer_candidates(c: int, k: int, side: int) -> dict[str, Callable[[], object]]:
    """The candidates for one ``c -> k`` convolution on a ``side x side`` input, with random data."""
    weight = torch.randn(k, c, 3, 3) / (3 * c**0.5)
    bias = torch.randn(k)
    x, grad = torch.randn(1, c, side, side), torch.randn(1, k, side, side)
    xcl, gcl = (t.contiguous(memory_format=torch.channels_last) for t in (x, grad))
    wcl = weight.contiguous(memory_format=torch.channels_last)
    candidates: dict[str, Callable[[], object]] = {
        "std cl": lambda: forward_backward(lambda t: F.conv2d(t, wcl, bias, padding=1), xcl, gcl),
        "std nchw": lambda: forward_backward(lambda t: F.conv2d(t, weight, bias, padding=1), x, grad),
    }
    for m in (2, 4, 6) if c > 3 else ():  # 3 input channels: nothing to gain
        candidates[f"W{m}"] = winograd_candidate(WinogradConv(weight, bias, m), xcl, gcl)
    return candidates


def winograd_candidate(conv: WinogradConv, x: Tensor, grad: Tensor) -> Callable[[], object]:
    """One forward and backward of ``conv`` by Winograd, as a candidate."""
    return lambda: forward_backward(lambda t: winograd_conv2d(t, conv), x, grad)


def layer_table(size: int, repeats: int) -> list[dict[str, Any]]:
    """For each conv layer up to :data:`LAST_LAYER`, the median ms of each candidate at ``size`` px."""
    torch.manual_seed(0)
    rows = []
    for info in LAYERS:
        if info.kind != "conv":
            continue
        side = size // info.factor
        ms = medians(layer_candidates(info.in_channels, info.out_channels, side), repeats)
        rows.append({"layer": info.name, "in": info.in_channels, "out": info.out_channels, "side": side, **ms})
        if info.name == LAST_LAYER:
            break
    return rows


#: A setting of the network's convolutions: Winograd from this many input channels (``None``:
#: the standard convolution everywhere), in bands of this many MiB (``None``: the module's sizes).
Config = tuple[int | None, int | None]


def configurations(thresholds: list[int], bands: list[int] | None) -> dict[str, Config]:
    """The standard convolution, then Winograd from each of ``thresholds`` in bands of each of ``bands``, by name."""
    configs: dict[str, Config] = {"standard": (None, None)}
    for c in thresholds:
        for b in bands or [None]:
            configs[f">= {c} channels" if b is None else f">= {c} channels, bands of {b} MiB"] = (c, b)
    return configs


@contextmanager
def network_settings() -> Iterator[Callable[[Config], None]]:
    """A setter of the network's :class:`Config` at torch's present thread count; the rule and bands are restored on exit.

    It sets :data:`styletransfer.vgg.WINOGRAD_MIN_CHANNELS` at that thread count
    (removed for the standard convolution) and
    :data:`styletransfer.winograd.BAND_BYTES` and ``BAND_BYTES_ONE_THREAD``.
    """
    threads = torch.get_num_threads()
    rule = dict(network.WINOGRAD_MIN_CHANNELS)
    band_sizes = (winograd.BAND_BYTES, winograd.BAND_BYTES_ONE_THREAD)

    def use(config: Config) -> None:
        channels, band_mib = config
        network.WINOGRAD_MIN_CHANNELS.pop(threads, None)
        if channels is not None:
            network.WINOGRAD_MIN_CHANNELS[threads] = channels
        winograd.BAND_BYTES, winograd.BAND_BYTES_ONE_THREAD = band_sizes if band_mib is None else (band_mib << 20,) * 2

    try:
        yield use
    finally:
        network.WINOGRAD_MIN_CHANNELS.clear()
        network.WINOGRAD_MIN_CHANNELS.update(rule)
        winograd.BAND_BYTES, winograd.BAND_BYTES_ONE_THREAD = band_sizes


def evaluation(size: int, repeats: int, thresholds: list[int], bands: list[int] | None = None) -> dict[str, Any]:
    """Median ms of one ``fast`` evaluation (loss + backward) with Winograd off and on.

    On: Winograd on the layers with at least each of ``thresholds`` input
    channels, at torch's present thread count (what
    :data:`styletransfer.vgg.WINOGRAD_MIN_CHANNELS` would say), in bands of
    each of ``bands`` MiB per temporary (``None``: the module's own sizes,
    :data:`styletransfer.winograd.BAND_BYTES` and ``BAND_BYTES_ONE_THREAD``).  Also the largest
    relative change of a loss term (style, content, TV) and the relative change
    of the image gradient (Frobenius norm) between the standard path and the
    first threshold's, at the content image plus a little noise (no exact
    max-pool ties).
    """
    settings = resolve_settings("fast", device="cpu")
    content = load_img(example_path("tubingen.jpg"), size)
    style = load_img(example_path("starry_night.jpg"), size)
    objective = build_objective(settings, content, [style])
    image = perturbed(content)
    configs = configurations(thresholds, bands)

    with network_settings() as use:

        def evaluate(config: Config) -> Evaluated:
            use(config)
            return terms_and_gradient(objective, image)

        def timed(config: Config) -> Callable[[], object]:
            return lambda: evaluate(config)

        ms = medians({name: timed(config) for name, config in configs.items()}, repeats)
        changes = relative_changes(evaluate((None, None)), evaluate((thresholds[0], None)))
    return {"ms": ms, **changes, "shape": tuple(content.shape[-2:])}


def in_run(size: int, evaluations: int, block: int, thresholds: list[int], bands: list[int] | None) -> dict[str, float]:
    """Median ms of an evaluation inside a real run, for each configuration, taking turns every ``block`` evaluations.

    One run of the default (the API's ``stylize`` on the demo's pair, one
    scale at ``size``, ``evaluations`` evaluations), as users run it: the
    L-BFGS state, its memory and the allocator's state are the run's, which
    the bare evaluations of :func:`evaluation` leave out (there the band size
    mattered more: docs/benchmarks.md).  The configurations are the standard
    convolution and each threshold x band size; the time of an evaluation is
    the time between two progress reports, counted for the configuration that
    ran it (the first three evaluations are left out).
    """
    configs = configurations(thresholds, bands)
    names = list(configs)
    times: dict[str, list[float]] = {n: [] for n in names}
    last: dict[str, Any] = {"at": None, "name": names[0]}

    with network_settings() as use:

        def take_turn(name: str) -> None:
            use(configs[name])
            last["name"] = name

        def report(progress: Progress) -> None:
            now = time.perf_counter()
            if last["at"] is not None and progress.step > 3:
                times[last["name"]].append(now - last["at"])
            last["at"] = now
            take_turn(names[(progress.step // block) % len(names)])

        take_turn(names[0])
        stylize(
            example_path("tubingen.jpg"),
            example_path("starry_night.jpg"),
            preset=replace(FAST, coarse_size=None),
            size=size,
            steps=evaluations,
            precision="fp32",
            callback=report,
        )
    return {n: statistics.median(t) * 1000 for n, t in times.items() if t}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 256])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="rounds per layer")
    parser.add_argument("--eval-repeats", type=int, default=5, help="rounds per evaluation")
    parser.add_argument("--no-layers", action="store_true", help="only the per-evaluation times")
    parser.add_argument(
        "--min-channels",
        type=int,
        nargs="+",
        help="per evaluation, Winograd from each of these input channels (default: the network's rule)",
    )
    parser.add_argument(
        "--band-mib",
        type=int,
        nargs="+",
        help="per evaluation, Winograd in bands of each of these MiB per temporary (default: the module's sizes)",
    )
    parser.add_argument(
        "--in-run",
        type=int,
        metavar="EVALUATIONS",
        help="instead: time the configurations taking turns inside one real run of this many evaluations",
    )
    parser.add_argument("--block", type=int, default=1, help="with --in-run: evaluations per turn")
    args = parser.parse_args()
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}")
    print(f"network: Winograd F(4x4,3x3) from these input channels, by thread count: {WINOGRAD_MIN_CHANNELS}")
    for size in args.sizes:
        for threads in args.threads:
            torch.set_num_threads(threads)
            if args.in_run:
                ms = in_run(size, args.in_run, args.block, args.min_channels or [128], args.band_mib)
                line = ", ".join(f"{k} {v:.0f} ms ({ms['standard'] / v:.2f}x)" for k, v in ms.items())
                print(f"in a run at {size} px, {threads} thread(s), turns of {args.block}: {line}", flush=True)
                continue
            if not args.no_layers:
                print(f"\n{size} px, {threads} thread(s): ms per forward + backward to the input")
                print("| layer | channels | H x W | std cl | std nchw | W2 | W4 | W6 | std cl / W4 |")
                print("|---|---|---|---|---|---|---|---|---|")
                for r in layer_table(size, args.repeats):
                    ms = " | ".join(f"{r[n]:.1f}" if n in r else "-" for n in ("std cl", "std nchw", "W2", "W4", "W6"))
                    ratio = f"{r['std cl'] / r['W4']:.2f}" if "W4" in r else "-"
                    print(
                        f"| {r['layer']} | {r['in']}->{r['out']} | {r['side']}x{r['side']} | {ms} | {ratio} |",
                        flush=True,
                    )
            thresholds = args.min_channels or [WINOGRAD_MIN_CHANNELS.get(threads, 128)]
            e = evaluation(size, args.eval_repeats, thresholds, args.band_mib)
            standard = e["ms"]["standard"]
            times = ", ".join(
                f"Winograd {k}: {v:.0f} ms ({standard / v:.2f}x)" for k, v in e["ms"].items() if k != "standard"
            )
            print(
                f"evaluation at {size} px {e['shape']}, {threads} thread(s): standard {standard:.0f} ms, {times}; "
                f"rel. change: loss terms {e['terms_rel']:.1e}, image gradient {e['grad_rel']:.1e}",
                flush=True,
            )


if __name__ == "__main__":
    main()
