"""Make the masks and the transparent subject used in docs/regions.md (run from the repository root).

.venv/bin/python docs/images/regions/make_masks.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from styletransfer import example_path

HERE = Path(__file__).parent
W, H = 256, 192  # Tübingen's frame (512x384), any size with its proportions

left = np.zeros((H, W), np.uint8)
left[:, : W // 2] = 255
Image.fromarray(left).save(HERE / "left.png")
Image.fromarray(255 - left).save(HERE / "right.png")

protect = Image.new("L", (W, H), 255)  # white: styled; black: keeps the content
ImageDraw.Draw(protect).ellipse((int(0.80 * W), int(0.12 * H), int(1.05 * W), int(0.80 * H)), fill=0)
protect.save(HERE / "protect_house.png")

subject = Image.open(example_path("tubingen.jpg")).convert("RGB").resize((W, H), Image.BILINEAR).convert("RGBA")
alpha = Image.new("L", (W, H), 0)
ImageDraw.Draw(alpha).ellipse((int(0.45 * W), int(0.02 * H), int(1.0 * W), int(0.95 * H)), fill=255)
subject.putalpha(alpha)
subject.save(HERE / "subject.png")
