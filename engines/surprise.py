"""PixelCNN surprise maps and mask-and-resample.

`surprise_maps`: for one image, from one batched forward pass, each pixel's negative log-likelihood
-log p(x_i | x_<i) (how surprised the model is by the value it sees) and the entropy of its predictive
distribution (how unsure it was before seeing it), in nats, summed over a pixel's colour channels. The
NLL map sums to the model's NLL of the image.

`resample_region`: paint a region; its pixels are drawn again in raster order, each conditioned on
everything before it (the kept pixels and those already redrawn), at a chosen temperature; every pixel
outside the region keeps its value. A causal model cannot look at the kept pixels after a redrawn one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class SurpriseMaps:
    levels: np.ndarray  # (C, H, W) int64: the image as the model's levels
    nll: np.ndarray  # (H, W) nats: -log p(x_i | x_<i), summed over channels
    entropy: np.ndarray  # (H, W) nats: entropy of p(. | x_<i), summed over channels

    @property
    def total_nll(self) -> float:
        return float(self.nll.sum(dtype=np.float64))


def image_to_levels(model, image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A (C, H, W) float image in [0, 1] -> int64 levels; integer arrays are taken as levels already."""
    x = torch.as_tensor(np.asarray(image)).cpu()
    return model.quantize(x) if x.is_floating_point() else x.long()


@torch.no_grad()
def surprise_maps(model, image: np.ndarray | torch.Tensor) -> SurpriseMaps:
    """Per-pixel NLL and predictive entropy of one (C, H, W) image, in one forward pass."""
    levels = image_to_levels(model, image).to(model.device)
    logits = model.logits(levels[None]).float()  # (1, K, C, H, W)
    log_p = F.log_softmax(logits, dim=1)
    nll = -log_p.gather(1, levels[None, None]).squeeze(1)[0]  # (C, H, W)
    entropy = -(log_p.exp() * log_p).sum(1)[0]  # (C, H, W)
    return SurpriseMaps(levels.cpu().numpy(), nll.sum(0).cpu().numpy(), entropy.sum(0).cpu().numpy())


@torch.no_grad()
def resample_region(
    model,
    image: np.ndarray | torch.Tensor,
    region: np.ndarray,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """The image's levels (C, H, W) with the pixels of `region` ((H, W) bool) drawn again in raster order,
    conditioned on everything before them; pixels outside the region are kept exactly."""
    levels = image_to_levels(model, image)
    region = np.asarray(region, dtype=bool)
    if region.shape != tuple(levels.shape[1:]):
        raise ValueError(f"the region is {region.shape}, the image {tuple(levels.shape[1:])}")
    known_mask = torch.from_numpy(~region)[None, None].expand(1, *levels.shape)
    out = model.sample_levels(
        1, known=levels[None], known_mask=known_mask, temperature=temperature, generator=generator
    )
    return out[0].numpy()
