"""Copy a training checkpoint into checkpoints/ without its optimizer and RNG state, with the weights
stored as float16 (a sixth of the size in all; loading casts them back to float32), keeping config,
dataset, training summary, metrics and vectors. Evaluate the published file, not the run's.
With --sample N it also carries the first N held-out images of its dataset (engines.data.sample), so
the app's dataset views work on a machine without the dataset's files (an image folder's: N spread
evenly over the folder given as --data-root, e.g. its test folder, so that every class is there).

    python tools/publish_checkpoint.py runs/vae-mnist-2d.safetensors checkpoints/vae-mnist-2d.safetensors \
        [--sample 1000 --data-root ../shared/datasets]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engines.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from engines.data.folder import folder_classes, list_files  # noqa: E402
from engines.data.sample import take_sample  # noqa: E402
from engines.evaluation import heldout_dataset  # noqa: E402


def publish(src: str, dst: str, sample: int = 0, data_root: str | None = None) -> None:
    ckpt = load_checkpoint(src)  # train state is not loaded unless asked for
    folder = ckpt.dataset.get("name") == "folder"  # listed class by class: a spread sample shows every class
    carried = take_sample(heldout_dataset(ckpt, data_root), sample, spread=folder) if sample else ckpt.sample
    labels = ckpt.label_names
    if not labels and folder and data_root:
        # A folder run from before folders were labelled: its classes are its training folder's subfolders.
        labels, _ = folder_classes(data_root, list_files(data_root))
    save_checkpoint(
        dst,
        ckpt.model.half(),
        dataset=ckpt.dataset,
        label_names=labels,
        training=ckpt.training,
        metrics=ckpt.metrics,
        vectors=ckpt.vectors,
        sample=carried,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument(
        "--sample", type=int, default=0, help="carry the first N held-out images (0: keep the source's)"
    )
    parser.add_argument(
        "--data-root",
        help="where the dataset's files are (default: $LATENT_EXPLORER_DATA, else ./data); for an image folder "
        "run, its training folder (class subfolders give a run from before folders were labelled its classes)",
    )
    args = parser.parse_args()
    publish(args.src, args.dst, args.sample, args.data_root)
