"""`faces`: simple cartoon faces with independent binary and continuous attributes.

Geometry is in fractions of the image side. Everything has a dark outline and the
features are thick, so they survive 32x32 and grayscale (glasses = dark frames, the smile
is a deep arc against a flat line).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .procedural import ProceduralDataset, lerp_color

BACKGROUND = (150, 190, 215)  # pale blue, luma ~181
OUTLINE = (25, 20, 20)
SKIN_LIGHT, SKIN_DARK = (250, 218, 190), (120, 78, 52)  # luma ~226 .. ~90
HAIR_DARK, HAIR_LIGHT = (35, 25, 20), (240, 210, 130)  # luma ~28 .. ~212
MOUTH = (70, 15, 20)
EYE_WHITE, PUPIL = (255, 255, 255), (20, 20, 30)
FRAME = (15, 15, 15)

CX, CY = 0.5, 0.56  # face centre
FACE_RY = 0.35  # half height
FACE_RX = (0.24, 0.36)  # half width range (face_width 0 .. 1)
EYE_DX, EYE_Y = 0.125, CY - 0.04  # eye centres at CX +- EYE_DX
EYE_R = (0.03, 0.065)  # eye radius range (eye_size 0 .. 1); stays inside the glasses' lenses
LENS_R, FRAME_W = 0.10, 0.03  # glasses: outer lens radius and frame thickness
MOUTH_Y, MOUTH_W = CY + 0.18, 0.032  # mouth centre height and stroke width
LINE_W = 0.02  # outline width


class FacesDataset(ProceduralDataset):
    """Attributes: smiling, glasses (binary, each 50%); hair_color (0 dark .. 1 blond),
    face_width (0 narrow .. 1 wide), skin_tone (0 light .. 1 dark), eye_size (0 small .. 1 large),
    all uniform in [0, 1]. All six are drawn independently; nothing else varies.
    """

    LABEL_NAMES = ["smiling", "glasses", "hair_color", "face_width", "skin_tone", "eye_size"]
    ATTRIBUTE_KINDS = {
        "smiling": "binary",
        "glasses": "binary",
        "hair_color": "continuous",
        "face_width": "continuous",
        "skin_tone": "continuous",
        "eye_size": "continuous",
    }

    def sample_params(self, rng: np.random.Generator) -> dict[str, Any]:
        u = rng.random(6)
        return {
            "smiling": bool(u[0] < 0.5),
            "glasses": bool(u[1] < 0.5),
            "hair_color": float(u[2]),
            "face_width": float(u[3]),
            "skin_tone": float(u[4]),
            "eye_size": float(u[5]),
        }

    def labels_of(self, p: dict[str, Any]) -> list[float]:
        return [
            float(p["smiling"]),
            float(p["glasses"]),
            p["hair_color"],
            p["face_width"],
            p["skin_tone"],
            p["eye_size"],
        ]

    def draw(self, p: dict[str, Any], canvas: int) -> Image.Image:
        S = float(canvas)
        im = Image.new("RGB", (canvas, canvas), BACKGROUND)
        d = ImageDraw.Draw(im)
        lw = max(1, round(LINE_W * S))
        cx, cy = CX * S, CY * S
        rx = (FACE_RX[0] + (FACE_RX[1] - FACE_RX[0]) * p["face_width"]) * S
        ry = FACE_RY * S

        # Face.
        d.ellipse(
            [cx - rx, cy - ry, cx + rx, cy + ry],
            fill=lerp_color(SKIN_LIGHT, SKIN_DARK, p["skin_tone"]),
            outline=OUTLINE,
            width=lw,
        )

        # Hair: a cap, i.e. the top of a slightly larger ellipse cut by a horizontal chord above the eyes
        # (the chord from 210 to 330 degrees lies at sin(30 deg) = half the cap radius above its centre).
        hx, htop, hbottom = rx + 0.03 * S, cy - ry - 0.04 * S, cy + ry
        hair = lerp_color(HAIR_DARK, HAIR_LIGHT, p["hair_color"])
        d.chord([cx - hx, htop, cx + hx, hbottom], start=208, end=332, fill=hair, outline=OUTLINE, width=lw)

        # Eyes: white with a pupil half as wide.
        er = (EYE_R[0] + (EYE_R[1] - EYE_R[0]) * p["eye_size"]) * S
        ey = EYE_Y * S
        for sx in (-1, 1):
            ex = cx + sx * EYE_DX * S
            d.ellipse([ex - er, ey - er, ex + er, ey + er], fill=EYE_WHITE, outline=OUTLINE, width=max(1, lw // 2))
            pr = 0.5 * er
            d.ellipse([ex - pr, ey - pr, ex + pr, ey + pr], fill=PUPIL)

        # Glasses: two thick round frames, a bridge, and arms out to the face edge.
        if p["glasses"]:
            lr, fw = LENS_R * S, max(1, round(FRAME_W * S))
            for sx in (-1, 1):
                ex = cx + sx * EYE_DX * S
                d.ellipse([ex - lr, ey - lr, ex + lr, ey + lr], outline=FRAME, width=fw)
                inner, outer = ex + sx * (lr - fw / 2), cx + sx * rx
                if sx * (outer - inner) > 0:
                    d.line([(inner, ey - 0.2 * lr), (outer, ey - 0.2 * lr)], fill=FRAME, width=fw)
            d.line([(cx - EYE_DX * S + lr - fw / 2, ey), (cx + EYE_DX * S - lr + fw / 2, ey)], fill=FRAME, width=fw)

        # Mouth: smile = lower arc of an ellipse (corners up); neutral = flat line.
        mw = max(1, round(MOUTH_W * S))
        my = MOUTH_Y * S
        if p["smiling"]:
            d.arc(
                [cx - 0.13 * S, my - 0.10 * S, cx + 0.13 * S, my + 0.065 * S], start=15, end=165, fill=MOUTH, width=mw
            )
        else:
            d.line([(cx - 0.09 * S, my + 0.02 * S), (cx + 0.09 * S, my + 0.02 * S)], fill=MOUTH, width=mw)
        return im
