"""`folder`: every readable image below a user's folder, preloaded into memory.

There is no train/test split: `train=False` gives the same images as `train=True`.
Labels follow torchvision's ImageFolder layout: when every image lies below a first-level subfolder
(`root/<class>/...`) and there are at least two such folders, each image is labelled one-hot with its
folder's name (label kind "class", classes in sorted order), so a classifier, a class-coloured scatter
or a conditional model can use them (CIFAR-10's `train/<class>/NNNN.jpg`). Otherwise images have no
labels (label vectors of length 0).
"""

from __future__ import annotations

import logging
import os
from collections import Counter

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .base import TensorImageDataset, binarize_tensor_uint8
from .spec import DatasetError, DataSpec

logger = logging.getLogger(__name__)

NOT_AN_IMAGE, TRUNCATED, UNREADABLE = "not an image", "truncated", "unreadable"


def list_files(root: str) -> list[str]:
    """All regular files below root, recursively, in a stable order; hidden files and folders skipped."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(n for n in dirnames if not n.startswith("."))
        out.extend(os.path.join(dirpath, n) for n in sorted(filenames) if not n.startswith("."))
    return [p for p in out if os.path.isfile(p)]


def _to_8bit(im: Image.Image) -> Image.Image:
    """16-bit / int / float grayscale to 8-bit L (Pillow's convert would clip them to white)."""
    a = np.asarray(im, dtype=np.float64)
    if im.mode.startswith("I;16"):
        a = a / 257.0
    elif a.size and a.max() > 255:
        a = a * (255.0 / a.max())
    elif im.mode == "F" and a.size and a.max() <= 1.0:
        a = a * 255.0
    return Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8), "L")


def load_image(path: str, size: int, channels: int) -> np.ndarray:
    """uint8 (channels, size, size): shorter side resized to `size`, centre-cropped.

    Raises whatever Pillow raises; the caller classifies it.
    """
    with Image.open(path) as im:
        im.draft("RGB" if channels == 3 else "L", (size, size))  # JPEG: decode at reduced scale, much faster
        im.load()  # decode now so truncated files fail here
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I", "F") or im.mode.startswith("I;16"):
            im = _to_8bit(im)
        if "A" in im.getbands() or "transparency" in im.info:
            # Flatten transparency onto black rather than whatever colour hides under alpha=0.
            rgba = im.convert("RGBA")
            im = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
        im = im.convert("RGB" if channels == 3 else "L")
        im = ImageOps.fit(im, (size, size), method=Image.Resampling.LANCZOS)
        arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _classify(e: Exception) -> str:
    # Order matters: UnidentifiedImageError and PermissionError are both OSErrors.
    if isinstance(e, UnidentifiedImageError):
        return NOT_AN_IMAGE
    if isinstance(e, PermissionError):
        return UNREADABLE
    if isinstance(e, (OSError, SyntaxError)):  # "image file is truncated", broken streams, bad PNG chunks
        return TRUNCATED
    return UNREADABLE


class FolderDataset(TensorImageDataset):
    """Images from a folder. `skipped` counts unusable files by reason, `skipped_files` lists them."""

    def __init__(self, spec: DataSpec, train: bool = True) -> None:
        root = spec.root
        if not root:
            raise DatasetError("The 'folder' dataset needs a root: the folder that holds the images (--data-root).")
        if not os.path.exists(root):
            raise DatasetError(f"Image folder {os.path.abspath(root)!r} does not exist.")
        if not os.path.isdir(root):
            raise DatasetError(f"Image folder {os.path.abspath(root)!r} is not a folder.")
        size, channels = spec.image_size, spec.channels
        files = list_files(root)
        arrays: list[np.ndarray] = []
        skipped_files: list[tuple[str, str]] = []
        for path in files:
            try:
                arrays.append(load_image(path, size, channels))
            except Exception as e:  # any per-file failure skips that file, never the whole folder
                reason = _classify(e)
                skipped_files.append((path, reason))
                logger.debug("skipping %s (%s): %s", path, reason, e)
        skipped = dict(Counter(reason for _, reason in skipped_files))
        if skipped_files:
            logger.warning(
                "Image folder %s: skipped %d of %d files (%s), e.g. %s",
                root,
                len(skipped_files),
                len(files),
                _describe(skipped),
                skipped_files[0][0],
            )
        if not arrays:
            if not files:
                raise DatasetError(f"Image folder {os.path.abspath(root)!r} contains no files.")
            raise DatasetError(
                f"Image folder {os.path.abspath(root)!r} has no usable images: all {len(files)} files "
                f"were skipped ({_describe(skipped)})."
            )
        images = torch.from_numpy(np.stack(arrays))
        images = binarize_tensor_uint8(images, spec.binarize, salt=0)  # same images for both "splits"
        bad = {p for p, _ in skipped_files}
        loaded = [p for p in files if p not in bad]  # source path of each loaded image, in order
        classes, labels = folder_classes(root, loaded)
        super().__init__(spec, images, labels, classes, {c: "class" for c in classes})
        self.train = train
        self.files = loaded
        self.skipped = skipped
        self.skipped_files = skipped_files


def folder_classes(root: str, files: list[str]) -> tuple[list[str], torch.Tensor]:
    """Class names and one-hot labels (N, K) from each file's first-level folder under root, or no
    labels ([] and (N, 0)) when an image lies in root itself or fewer than two folders hold images."""
    tops = [os.path.relpath(p, root).split(os.sep)[0] for p in files]
    in_folders = all(os.path.isdir(os.path.join(root, t)) for t in tops)
    classes = sorted(set(tops))
    if not in_folders or len(classes) < 2:
        return [], torch.zeros((len(files), 0))
    index = {c: k for k, c in enumerate(classes)}
    targets = torch.tensor([index[t] for t in tops], dtype=torch.int64)
    return classes, torch.nn.functional.one_hot(targets, len(classes)).to(torch.float32)


def _describe(skipped: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
