"""`shapes`: one coloured square, circle or triangle on a plain dark background."""

from __future__ import annotations

import colorsys
import math
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .procedural import ProceduralDataset

SHAPE_NAMES = ("square", "circle", "triangle")
BACKGROUND = (16, 16, 20)
SATURATION, VALUE = 0.7, 1.0  # not fully saturated so every hue stays bright in grayscale (blue too)
# "size" is the radius of the circle of equal area, so all three shapes of one size look equally big.
MIN_RADIUS, MAX_RADIUS = 0.07, 0.17  # as a fraction of the image side
# Centres are drawn from this range, independent of size; it keeps the largest triangle
# (circumradius 1.555 * 0.17 = 0.264) inside the image.
POS_LO, POS_HI = 0.27, 0.73
# Circumradius / equal-area radius, and rotational symmetry period, per shape.
_CIRCUM = {"square": math.sqrt(math.pi / 2), "triangle": math.sqrt(4 * math.pi / (3 * math.sqrt(3)))}
_SIDES = {"square": 4, "triangle": 3}


class ShapesDataset(ProceduralDataset):
    """Attributes (all in [0, 1] except "shape"):
    shape: class index (0 square, 1 circle, 2 triangle) as a float;
    color: hue in [0, 1);  size: equal-area radius, 0 smallest .. 1 largest;
    x, y: centre, 0 = left/top .. 1 = right/bottom of the range centres are drawn from;
    rotation: angle as a fraction of the shape's symmetry period (90 deg square, 120 deg triangle;
    meaningless, though still drawn, for circles).
    All attributes are drawn independently.
    """

    LABEL_NAMES = ["shape", "color", "size", "x", "y", "rotation"]
    ATTRIBUTE_KINDS = {
        "shape": "categorical",
        "color": "continuous",
        "size": "continuous",
        "x": "continuous",
        "y": "continuous",
        "rotation": "continuous",
    }

    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        u = rng.random(5)
        return {
            "shape": int(rng.integers(3)),
            "color": float(u[0]),
            "size": float(u[1]),
            "x": float(u[2]),
            "y": float(u[3]),
            "rotation": float(u[4]),
        }

    def labels_of(self, p: dict[str, Any]) -> list[float]:
        return [float(p["shape"]), p["color"], p["size"], p["x"], p["y"], p["rotation"]]

    def draw(self, p: dict[str, Any], canvas: int) -> Image.Image:
        im = Image.new("RGB", (canvas, canvas), BACKGROUND)
        d = ImageDraw.Draw(im)
        rgb = tuple(int(round(255 * v)) for v in colorsys.hsv_to_rgb(p["color"], SATURATION, VALUE))
        r = (MIN_RADIUS + (MAX_RADIUS - MIN_RADIUS) * p["size"]) * canvas
        cx = (POS_LO + (POS_HI - POS_LO) * p["x"]) * canvas
        cy = (POS_LO + (POS_HI - POS_LO) * p["y"]) * canvas
        kind = SHAPE_NAMES[p["shape"]]
        if kind == "circle":
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=rgb)
        else:
            n = _SIDES[kind]
            big_r = r * _CIRCUM[kind]
            # rotation 0: square axis-aligned, triangle pointing up.
            start = -math.pi / 2 + (math.pi / 4 if n == 4 else 0.0) + p["rotation"] * 2 * math.pi / n
            pts = [
                (cx + big_r * math.cos(start + 2 * math.pi * k / n), cy + big_r * math.sin(start + 2 * math.pi * k / n))
                for k in range(n)
            ]
            d.polygon(pts, fill=rgb)
        return im
