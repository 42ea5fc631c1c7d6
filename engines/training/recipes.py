"""How each model kind trains: its optimizers, one training step, and its held-out losses.

A recipe is stateless; the trainer owns the loop, the data order, the RNG and the checkpoints.
A recipe with `uses_labels` (the classifier's) also gets each batch's labels, as `labels=`, and so
does every recipe training a class-conditional model (`num_classes` > 0: the labels are its classes).
`nets` are the modules a step runs through: the model's own, or DistributedDataParallel wrappers
of them under torchrun (see `networks`), so gradients are averaged across processes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..models import GAN, VAE, Classifier, GatedPixelCNN, GenerativeModel, StyleGAN
from ..models.conditional import balanced_classes, one_hot
from ..models.pixelcnn import log_prob_from_logits

Optimizers = dict[str, torch.optim.Optimizer]
Nets = dict[str, nn.Module]
Wrap = Callable[[nn.Module], nn.Module]


class Recipe:
    default_lr: float = 1e-3
    default_lr_text: str = "1e-3"  # what a blank learning rate means, for a form's placeholder
    signed_losses: bool = False  # True: a loss may be negative (a WGAN critic's), so no log-scale plot
    main_loss: str = "loss"  # the loss shown first (progress bar, curves)
    uses_labels: bool = False  # True: step and evaluate also take the batch's labels (labels=...)

    def optimizers(self, model: GenerativeModel, lr: float | None) -> Optimizers:
        return {"main": torch.optim.Adam(model.parameters(), lr=lr or self.default_lr)}

    def networks(self, model: GenerativeModel, wrap: Wrap) -> Nets:
        """The modules whose forward the step calls, wrapped (e.g. in DDP) by `wrap`."""
        return {"model": wrap(model)}

    def step(
        self, model: GenerativeModel, nets: Nets, images: torch.Tensor, optimizers: Optimizers, step: int
    ) -> dict[str, float]:
        raise NotImplementedError

    def lr_scale(self, step: int, total_steps: int) -> float | None:
        """The factor on the initial learning rates at `step` (0-based) of `total_steps`; None: constant."""
        return None

    def takes_labels(self, model: GenerativeModel) -> bool:
        """Whether step and evaluate get the batch's labels: the recipe's own need, or a conditional model."""
        return self.uses_labels or model.num_classes > 0

    @torch.no_grad()
    def evaluate(
        self,
        model: GenerativeModel,
        images: torch.Tensor,
        generator: torch.Generator,
        labels: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """Per-image sums of held-out losses for one batch (the trainer averages them)."""
        return {}

    def forward_loss(self, model: GenerativeModel, images: torch.Tensor) -> torch.Tensor:
        """The largest forward pass of a step, on the model's own networks: engines.memory runs it on
        PyTorch's meta device to count the bytes of its activations."""
        raise NotImplementedError


def _some_labels(model: GenerativeModel, images: torch.Tensor) -> torch.Tensor | None:
    """One-hot classes for a batch without labels (the memory estimate's forward pass); None without classes."""
    if not model.num_classes:
        return None
    return one_hot(balanced_classes(images.shape[0], model.num_classes), model.num_classes).to(images)


def _update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(loss.device.type, enabled=False):  # backward reuses the forward's dtypes
        loss.backward()
    optimizer.step()


class VAERecipe(Recipe):
    def step(self, model: VAE, nets, images, optimizers, step):
        terms = nets["model"](images)  # VAE.forward is the ELBO
        loss = terms.loss(model.config.beta)
        _update(optimizers["main"], loss)
        return {"loss": loss.item(), "recon": terms.recon.mean().item(), "kl": terms.kl.sum(1).mean().item()}

    @torch.no_grad()
    def evaluate(self, model: VAE, images, generator):
        terms = model.elbo(images, generator=generator)
        neg_elbo = terms.recon + terms.kl.sum(1)
        return {"loss": neg_elbo.sum().item(), "recon": terms.recon.sum().item(), "kl": terms.kl.sum().item()}

    def forward_loss(self, model: VAE, images):
        return model(images).loss(model.config.beta)


CODE_G_LR_MUL = 5.0  # a coded GAN's generator rate over the discriminator's (GANRecipe.optimizers)


class GANRecipe(Recipe):
    main_loss = "d_loss"
    default_lr_text = "2e-4 (WGAN-GP 1e-4)"
    signed_losses = True

    def optimizers(self, model: GAN, lr):
        if model.config.loss == "wgan-gp":  # Gulrajani et al.: Adam(1e-4, beta1=0, beta2=0.9)
            lr, betas = lr or 1e-4, (0.0, 0.9)
        else:  # Radford et al.: Adam(2e-4, beta1=0.5)
            lr, betas = lr or 2e-4, (0.5, 0.999)
        # With a categorical code, G learns at 5x D's rate, as InfoGAN does (Chen et al. 2016: 1e-3 and 2e-4);
        # at 1x the categories held stroke styles rather than digits on MNIST (21% of each was one digit).
        g_lr = lr * CODE_G_LR_MUL if model.config.code_classes else lr
        return {
            "generator": torch.optim.Adam(model.generator.parameters(), lr=g_lr, betas=betas),
            "discriminator": torch.optim.Adam(model.discriminator.parameters(), lr=lr, betas=betas),
        }

    def networks(self, model: GAN, wrap):
        return {"generator": wrap(model.generator), "discriminator": wrap(model.discriminator)}

    def step(self, model: GAN, nets, images, optimizers, step, labels=None):
        """One discriminator step per batch; one generator step after every d_steps of them. A conditional
        model's fakes are drawn with the real batch's classes (`labels`)."""
        n, latent = images.shape[0], model.config.latent_dim
        g, d = nets["generator"], nets["discriminator"]
        d_loss = model.discriminator_loss(images, torch.randn(n, latent, device=images.device), g, d, labels)
        _update(optimizers["discriminator"], d_loss)
        losses = {"d_loss": d_loss.item()}
        if (step + 1) % model.config.d_steps == 0:
            # D's own gradients from this pass are discarded: its next step starts with zero_grad.
            parts: dict[str, float] = {}  # a categorical code's cross-entropy (InfoGAN), within g_loss
            g_loss = model.generator_loss(torch.randn(n, latent, device=images.device), g, labels, parts)
            _update(optimizers["generator"], g_loss)
            losses["g_loss"] = g_loss.item()
            losses.update(parts)
        return losses

    def forward_loss(self, model: GAN, images):
        z = torch.randn(images.shape[0], model.config.latent_dim, device=images.device)
        labels = _some_labels(model, images)
        return model.discriminator_loss(images, z, model.generator, model.discriminator, labels)


class _StyleGenerator(nn.Module):
    """The style-based generator as one module, z -> images in [-1, 1] (random noise, style mixing):
    what a step runs, and what DistributedDataParallel wraps under torchrun. It shares the model's
    mapping and synthesis networks (no parameters of its own); `track` moves the model's mean_w."""

    def __init__(self, model: StyleGAN) -> None:
        super().__init__()
        self.mapping, self.synthesis = model.mapping_net, model.synthesis
        self._model = [model]  # not a submodule: its parameters are the ones above

    def forward(self, z: torch.Tensor, track: bool = False, y: torch.Tensor | None = None) -> torch.Tensor:
        model = self._model[0]
        return self.synthesis(model.styles_for_training(z, self.mapping, track=track, y=y), "random")


class StyleGANRecipe(Recipe):
    """StyleGAN2's objective: the non-saturating logistic loss, a lazy R1 penalty on real images (every
    r1_every discriminator steps, weighted by r1_every), style-mixing regularisation, mean_w tracked
    by an EMA; Adam(2e-3, betas (0, 0.99)) for both networks (the mapping learns at 0.01x through its
    equalized-lr multiplier). One generator step per discriminator step."""

    main_loss = "d_loss"
    default_lr_text = "2e-3"
    signed_losses = False

    def optimizers(self, model: StyleGAN, lr):
        lr, betas = lr or 2e-3, (0.0, 0.99)
        g_params = [*model.mapping_net.parameters(), *model.synthesis.parameters()]
        return {
            "generator": torch.optim.Adam(g_params, lr=lr, betas=betas, eps=1e-8),
            "discriminator": torch.optim.Adam(model.discriminator.parameters(), lr=lr, betas=betas, eps=1e-8),
        }

    def networks(self, model: StyleGAN, wrap):
        return {"generator": wrap(_StyleGenerator(model)), "discriminator": wrap(model.discriminator)}

    def step(self, model: StyleGAN, nets, images, optimizers, step, labels=None):
        """A conditional model's fakes are drawn with the real batch's classes (`labels`)."""
        n, latent, cfg = images.shape[0], model.config.latent_dim, model.config
        g, d = nets["generator"], nets["discriminator"]
        real = images * 2 - 1
        y = None if labels is None else labels.float()
        with torch.no_grad():
            fake = g(torch.randn(n, latent, device=images.device), y=y)
        d_loss = F.softplus(d(fake, y)).mean() + F.softplus(-d(real, y)).mean()
        losses = {"d_loss": d_loss.item()}
        if cfg.r1_gamma > 0 and step % cfg.r1_every == 0:
            # R1 (Mescheder et al. 2018): the squared gradient norm of D at real images, through the
            # unwrapped D (double backward); its gradients join the wrapped pass's in one backward.
            x = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(model.discriminator(x, y).sum(), x, create_graph=True)
            r1 = grad.pow(2).sum(dim=(1, 2, 3)).mean()
            d_loss = d_loss + r1 * (cfg.r1_gamma / 2) * cfg.r1_every
            losses["r1"] = r1.item()
        _update(optimizers["discriminator"], d_loss)
        # G: D's own gradients from this pass are discarded (its next step starts with zero_grad).
        fake = g(torch.randn(n, latent, device=images.device), track=True, y=y)
        g_loss = F.softplus(-model.discriminator(fake, y)).mean()
        _update(optimizers["generator"], g_loss)
        losses["g_loss"] = g_loss.item()
        return losses

    def forward_loss(self, model: StyleGAN, images):
        z = torch.randn(images.shape[0], model.config.latent_dim, device=images.device)
        y = _some_labels(model, images)
        fake = model.synthesis(model.broadcast(model.mapping_net(z, y)), "random")
        real = images * 2 - 1
        return F.softplus(-model.discriminator(fake, y)).mean() + F.softplus(-model.discriminator(real, y)).mean()


def cosine_decay(step: int, total_steps: int) -> float:
    """From 1 at the first step to 0 at the last: the final steps settle into a minimum."""
    return 0.5 * (1.0 + math.cos(math.pi * step / max(1, total_steps)))


class PixelCNNRecipe(Recipe):
    """Adam 1e-3 decayed to 0 along a cosine over the run (worth a few nats over a constant rate when
    the run is a handful of epochs, as on a CPU)."""

    main_loss = "nll"

    def lr_scale(self, step, total_steps):
        return cosine_decay(step, total_steps)

    def step(self, model: GatedPixelCNN, nets, images, optimizers, step):
        levels = model.quantize(images)
        nll = -log_prob_from_logits(nets["model"](levels), levels).mean()
        _update(optimizers["main"], nll)
        return {"nll": nll.item(), "bits_per_dim": model.bits_per_dim(nll.item())}

    @torch.no_grad()
    def evaluate(self, model: GatedPixelCNN, images, generator):
        nll = -model.log_prob(model.quantize(images)).sum().item()
        return {"nll": nll, "bits_per_dim": model.bits_per_dim(nll)}

    def forward_loss(self, model: GatedPixelCNN, images):
        levels = model.quantize(images)
        return -log_prob_from_logits(model(levels), levels).mean()


class ClassifierRecipe(Recipe):
    """Supervised: cross-entropy / BCE / squared error per head (Classifier.loss), Adam 1e-3 with a
    cosine decay to 0 over the run: the sharp, confident predictions an Inception Score needs."""

    uses_labels = True

    def lr_scale(self, step, total_steps):
        return cosine_decay(step, total_steps)

    def step(self, model: Classifier, nets, images, optimizers, step, labels=None):
        loss = model.loss(nets["model"](images), labels)
        _update(optimizers["main"], loss)
        return {"loss": loss.item()}

    @torch.no_grad()
    def evaluate(self, model: Classifier, images, generator, labels=None):
        """Loss, class accuracy, per-attribute accuracy / mean absolute error (as per-image sums)."""
        outputs = model(images)
        return {"loss": model.loss(outputs, labels).item() * images.shape[0], **model.score(outputs, labels)}

    def forward_loss(self, model: Classifier, images):
        return model(images).mean()  # the heads' raw outputs: the loss itself needs labels


RECIPES: dict[str, Recipe] = {
    "vae": VAERecipe(),
    "gan": GANRecipe(),
    "stylegan": StyleGANRecipe(),
    "pixelcnn": PixelCNNRecipe(),
    "classifier": ClassifierRecipe(),
}


def finite(losses: dict[str, float]) -> bool:
    return all(math.isfinite(v) for v in losses.values())
