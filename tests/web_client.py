"""What the studio's in-process API tests share: a test client on a fresh data folder, and small PNG uploads."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image

from styletransfer.web.server import Config, create_app

#: The address the test clients pretend to call (a Host the server accepts).
BASE = "http://127.0.0.1:8000"


def studio_client(tmp_path: Path, **config: Any) -> Iterator[TestClient]:
    """A client of a studio whose data folder is ``tmp_path / "data"`` and whose ``Config`` has ``config``.

    The instant networks are not loaded in the background unless ``warm_instant=True`` is given
    (most tests never ask for an instant picture).
    """
    config.setdefault("warm_instant", False)
    app = create_app(Config(tmp_path / "data", **config))
    with TestClient(app, base_url=BASE) as client:
        yield client


def png(source: Path, size: tuple[int, int], mode: str = "RGB") -> bytes:
    """``source`` resized to ``size`` (bilinear) in ``mode``, as PNG bytes."""
    buf = io.BytesIO()
    Image.open(source).convert(mode).resize(size, Image.BILINEAR).save(buf, "PNG")
    return buf.getvalue()
