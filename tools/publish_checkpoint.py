"""Copy a training checkpoint into checkpoints/ without its optimizer and RNG state, with the weights
stored as float16 (a sixth of the size in all; loading casts them back to float32), keeping config,
dataset, training summary, metrics and vectors. Evaluate the published file, not the run's.

    python tools/publish_checkpoint.py runs/vae-mnist-2d.safetensors checkpoints/vae-mnist-2d.safetensors
"""

from __future__ import annotations

import sys

from engines.checkpoint import load_checkpoint, save_checkpoint


def publish(src: str, dst: str) -> None:
    ckpt = load_checkpoint(src)  # train state is not loaded unless asked for
    save_checkpoint(dst, ckpt.model.half(), dataset=ckpt.dataset, label_names=ckpt.label_names, training=ckpt.training,
                    metrics=ckpt.metrics, vectors=ckpt.vectors)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    publish(sys.argv[1], sys.argv[2])
