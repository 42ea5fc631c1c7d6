"""How each model kind trains: its optimizers, one training step, and its held-out losses.

A recipe is stateless; the trainer owns the loop, the data order, the RNG and the checkpoints.
"""

from __future__ import annotations

import math

import torch

from ..models import GAN, VAE, GatedPixelCNN, GenerativeModel

Optimizers = dict[str, torch.optim.Optimizer]


class Recipe:
    default_lr: float = 1e-3
    main_loss: str = "loss"  # the loss shown first (progress bar, curves)

    def optimizers(self, model: GenerativeModel, lr: float | None) -> Optimizers:
        return {"main": torch.optim.Adam(model.parameters(), lr=lr or self.default_lr)}

    def step(self, model: GenerativeModel, images: torch.Tensor, optimizers: Optimizers, step: int) -> dict[str, float]:
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, model: GenerativeModel, images: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        """Per-image sums of held-out losses for one batch (the trainer averages them)."""
        return {}


class VAERecipe(Recipe):
    def step(self, model: VAE, images, optimizers, step):
        terms = model.elbo(images)
        loss = terms.loss(model.config.beta)
        opt = optimizers["main"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "recon": terms.recon.mean().item(), "kl": terms.kl.sum(1).mean().item()}

    @torch.no_grad()
    def evaluate(self, model: VAE, images, generator):
        terms = model.elbo(images, generator=generator)
        neg_elbo = terms.recon + terms.kl.sum(1)
        return {"loss": neg_elbo.sum().item(), "recon": terms.recon.sum().item(), "kl": terms.kl.sum().item()}


class GANRecipe(Recipe):
    main_loss = "d_loss"

    def optimizers(self, model: GAN, lr):
        if model.config.loss == "wgan-gp":  # Gulrajani et al.: Adam(1e-4, beta1=0, beta2=0.9)
            lr, betas = lr or 1e-4, (0.0, 0.9)
        else:  # Radford et al.: Adam(2e-4, beta1=0.5)
            lr, betas = lr or 2e-4, (0.5, 0.999)
        return {
            "generator": torch.optim.Adam(model.generator.parameters(), lr=lr, betas=betas),
            "discriminator": torch.optim.Adam(model.discriminator.parameters(), lr=lr, betas=betas),
        }

    def step(self, model: GAN, images, optimizers, step):
        """One discriminator step per batch; one generator step after every d_steps of them."""
        n, latent = images.shape[0], model.config.latent_dim
        d_opt, g_opt = optimizers["discriminator"], optimizers["generator"]
        d_loss = model.discriminator_loss(images, torch.randn(n, latent, device=images.device))
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        losses = {"d_loss": d_loss.item()}
        if (step + 1) % model.config.d_steps == 0:
            g_loss = model.generator_loss(torch.randn(n, latent, device=images.device))
            g_opt.zero_grad(set_to_none=True)
            g_loss.backward()  # D's grads are cleared before its next step
            g_opt.step()
            losses["g_loss"] = g_loss.item()
        return losses


class PixelCNNRecipe(Recipe):
    main_loss = "nll"

    def step(self, model: GatedPixelCNN, images, optimizers, step):
        nll = -model.log_prob(model.quantize(images)).mean()
        opt = optimizers["main"]
        opt.zero_grad(set_to_none=True)
        nll.backward()
        opt.step()
        return {"nll": nll.item(), "bits_per_dim": model.bits_per_dim(nll.item())}

    @torch.no_grad()
    def evaluate(self, model: GatedPixelCNN, images, generator):
        nll = -model.log_prob(model.quantize(images)).sum().item()
        return {"nll": nll, "bits_per_dim": model.bits_per_dim(nll)}


RECIPES: dict[str, Recipe] = {"vae": VAERecipe(), "gan": GANRecipe(), "pixelcnn": PixelCNNRecipe()}


def finite(losses: dict[str, float]) -> bool:
    return all(math.isfinite(v) for v in losses.values())
