"""``show()``: images and figures inline in Jupyter (the seed's home), or in a viewer.

Outside a Jupyter kernel, each item opens in the system's image viewer
through Pillow's ``Image.show()``.
"""

from __future__ import annotations

import io

from PIL import Image

from .images import ImageLike, to_pil, to_tensor


def in_jupyter() -> bool:
    """True inside an IPython kernel (Jupyter, VS Code, Colab), not in a terminal IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def as_pil(item: object) -> Image.Image:
    """An image (path, PIL, array, tensor) or a matplotlib Figure as a PIL image."""
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        Figure = ()  # type: ignore[assignment,misc]
    if isinstance(item, Figure):
        buffer = io.BytesIO()
        item.savefig(buffer, format="png")
        buffer.seek(0)
        image = Image.open(buffer)
        image.load()
        return image
    if isinstance(item, Image.Image):
        return item
    return to_pil(to_tensor(item))  # type: ignore[arg-type]


def show(*items: ImageLike | object) -> list[Image.Image]:
    """Display each image or Figure: inline in Jupyter, else in the system viewer.

    Returns:
        The PIL images shown, in order.
    """
    images = [as_pil(item) for item in items]
    if in_jupyter():
        from IPython.display import display

        display(*images)
    else:
        for image in images:
            image.show()
    return images
