"""Small shared helpers for the tests (tiny models, procedural data, a tiny Train-tab run); no Qt here."""

from __future__ import annotations

from engines.data import DataSpec, ShapesDataset

TINY = {
    "vae": {"latent_dim": 4, "width": 8, "fc_dim": 32},
    "gan": {"latent_dim": 8, "g_width": 8, "d_width": 8},
    "pixelcnn": {"hidden": 8, "n_layers": 2, "first_kernel": 5},
    # 32x32x3 (a style generator halves to 4x4): 8 styles of w_dim 16
    "stylegan": {
        "latent_dim": 8,
        "w_dim": 16,
        "mapping_layers": 2,
        "g_width": 4,
        "g_max": 16,
        "d_width": 4,
        "d_max": 16,
    },
}


def shapes(n: int = 256, train: bool = True, binarize: str = "none", image_size: int = 28) -> ShapesDataset:
    """A small grayscale procedural dataset, 28x28 unless asked (no files needed)."""
    return ShapesDataset(DataSpec("shapes", image_size=image_size, channels=1, binarize=binarize), train, length=n)


# `latent-explorer train` arguments for a tiny VAE on the procedural shapes at 28x28x1 (callers add the rest)
TINY_VAE_ARGS = ["--model", "vae", "--dataset", "shapes", "--image-size", "28", "--channels", "1", "--latent-dim", "2"]
TINY_RUN = dict(model="vae", dataset="shapes", image_size=28, channels=1, latent_dim=2, batch_size=16)
"""The Train tab's form for a tiny run: a VAE with latent 2 on 28x28 grey shapes, batch 16."""


def tiny_vae_run(panel, path, **form):
    """Fill a Train tab (explorer.panels.training.TrainingPanel) for TINY_RUN writing `path`, with the
    tiny widths of TINY and one held-out batch per evaluation; `form` overrides fields, and
    `train_overrides=` adds TrainConfig fields. Returns the panel."""
    panel.config_overrides = {k: v for k, v in TINY["vae"].items() if k != "latent_dim"}
    panel.train_overrides = {"eval_batches": 1, **form.pop("train_overrides", {})}
    panel.configure(**{**TINY_RUN, "checkpoint_path": path, **form})
    return panel
