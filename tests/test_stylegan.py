"""The style-based generator (engines.models.stylegan), its spaces and metrics (engines.styles) and the
layer probe (engines.layers): tiny models on the CPU, no Qt."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes

from engines.checkpoint import META_KEY, CheckpointError, load_checkpoint, save_checkpoint
from engines.data import DataSpec, load_dataset
from engines.layers import channel_grid, generator_layers, layer_activation
from engines.models import build_model
from engines.projection import project_to_latent
from engines.styles import (
    StyleSpace,
    mixing_grid,
    mixing_mosaic,
    perceptual_path_length,
    space_latent_dim,
    style_ranges,
)
from engines.training.events import StepDone
from engines.training.trainer import TrainConfig, Trainer, create_model
from tests.helpers import TINY


def tiny(seed: int = 0, **config):
    torch.manual_seed(seed)
    model = build_model("stylegan", {**TINY["stylegan"], **config}).eval()
    with torch.no_grad():
        model.w_avg.normal_()  # an untrained model's mean w is 0; give truncation something to pull to
        for conv in model.synthesis.convs:
            conv.noise_strength.fill_(0.3)  # the fixed noise must matter for the determinism checks
    return model


def test_mapping_and_synthesis_shapes():
    model = tiny()
    z = torch.randn(5, 8)
    w = model.mapping(z)
    assert w.shape == (5, 16)
    assert model.n_styles == 8  # 32x32: conv 4, (up, conv, rgb) x 3 stages + the first rgb
    assert model.broadcast(w).shape == (5, 8, 16)
    images = model.synthesize(model.broadcast(w))
    assert images.shape == (5, 3, 32, 32)
    assert torch.equal(model.decode(z), model.decode_w(w))  # decode is G(mapping(z))
    with pytest.raises(ValueError, match="W\\+ must be"):
        model.synthesize(w)


@pytest.mark.parametrize("noise", ["none", "const"])
@pytest.mark.parametrize("up", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_the_modulated_convolution_is_the_per_sample_modulated_demodulated_kernel(noise, up, channels_last):
    """The layer computes its demodulation from the style and the kernel's squared sums (one product), not
    from each sample's modulated kernel, styles its input before upsampling it, adds noise and bias as one
    offset and folds the activation's gain into them; the image must be the textbook one: upsampled, then
    per sample the kernel's input channels scaled by the style, each output channel renormalised to unit
    norm, as a grouped convolution; plus noise x strength and bias, leaky ReLU, x sqrt 2. In either memory
    format (the maps' fast decode runs channels_last)."""
    import torch.nn.functional as F

    from engines.models.stylegan import ModulatedConv

    torch.manual_seed(0)
    size = 16 if up else 8
    layer = ModulatedConv(6, 5, 3, w_dim=8, size=size, up=up)
    x, w = torch.randn(4, 6, 8, 8), torch.randn(4, 8)
    with torch.no_grad():
        layer.bias.normal_()
        layer.noise_strength.fill_(0.5)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        got = layer.to(memory_format=fmt)(x.contiguous(memory_format=fmt), w, noise=noise)
        style = layer.affine(w)
        kernels = layer.weight[None] * layer.scale * style[:, None, :, None, None]  # (B, out, in, k, k)
        kernels = kernels * torch.rsqrt(kernels.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        big = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False) if up else x
        grouped = big.reshape(1, -1, size, size)
        out = F.conv2d(grouped, kernels.reshape(-1, 6, 3, 3), padding=1, groups=4).reshape(4, 5, size, size)
        if noise == "const":
            out = out + layer.noise_strength * layer.noise_const
        expected = F.leaky_relu(out + layer.bias[None, :, None, None], 0.2) * 2**0.5
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_decode_is_a_function_of_z_and_random_noise_is_not():
    model = tiny()
    z = torch.randn(2, 8)
    assert torch.equal(model.decode(z), model.decode(z))  # fixed noise buffers
    ws = model.broadcast(model.mapping(z))
    assert not torch.allclose(model.synthesize(ws, noise="random"), model.synthesize(ws, noise="random"))


def test_truncation_psi_zero_gives_the_mean_w_image():
    model = tiny()
    mean_image = model.decode_w(model.mean_w[None])
    for seed in range(3):
        z = torch.randn(1, 8, generator=torch.Generator().manual_seed(seed))
        assert torch.allclose(model.decode(z, psi=0.0), mean_image, atol=1e-6)
        assert not torch.allclose(model.decode(z), mean_image, atol=1e-3)
    space = StyleSpace(model, "W", psi=0.0)
    assert torch.allclose(space.decode(space.random_latents(4)), mean_image.expand(4, -1, -1, -1), atol=1e-6)
    # psi = 0.5 is halfway between w and the mean in W itself
    w = model.mapping(torch.randn(1, 8))
    assert torch.allclose(model.truncate(w, 0.5), (w + model.mean_w) / 2, atol=1e-6)


def test_style_mixing_crossover_at_layer_zero_is_b_and_past_the_last_is_a():
    model = tiny()
    w_a, w_b = model.mapping(torch.randn(3, 8)), model.mapping(torch.randn(4, 8))
    n = model.n_styles
    assert torch.equal(model.mix(w_a[:1], w_b[:1], 0), model.broadcast(w_b[:1]))
    assert torch.equal(model.mix(w_a[:1], w_b[:1], n), model.broadcast(w_a[:1]))
    a, b, cells = mixing_grid(model, w_a, w_b, 0)
    assert cells.shape == (3, 4, 32, 32, 3)
    np.testing.assert_allclose(cells, np.broadcast_to(b[None], cells.shape), atol=1e-5)
    a, b, cells = mixing_grid(model, w_a, w_b, n)
    np.testing.assert_allclose(cells, np.broadcast_to(a[:, None], cells.shape), atol=1e-5)
    # a coarse crossover is neither source
    start, stop = style_ranges(model)["coarse"]
    a, b, cells = mixing_grid(model, w_a, w_b, start, stop)
    assert np.abs(cells[0, 0] - a[0]).max() > 1e-3 and np.abs(cells[0, 0] - b[0]).max() > 1e-3
    mosaic = mixing_mosaic(a, b, cells, gap=2)
    assert mosaic.shape == (4 * 34 - 2, 5 * 34 - 2, 3)
    np.testing.assert_array_equal(mosaic[:32, 34:66], b[0])  # B along the top
    np.testing.assert_array_equal(mosaic[34:66, :32], a[0])  # A down the left


def test_w_plus_projection_reconstructs_better_than_z_projection():
    model = tiny(seed=3)
    with torch.no_grad():  # a generated image: two faces' styles mixed, so it is in the model's range
        w1, w2 = model.mapping(torch.randn(2, 8, generator=torch.Generator().manual_seed(7)))
        target = model.synthesize(model.mix(w1[None], w2[None], 3))[0]
    z = project_to_latent(model, target, steps=60, lr=0.05, seed=1)
    w_plus = project_to_latent(StyleSpace(model, "W+"), target, steps=60, lr=0.05, seed=1)
    assert w_plus.z.shape == (8 * 16,)
    assert w_plus.mse < 0.8 * z.mse, (w_plus.mse, z.mse)


def test_style_space_round_trips_z_and_has_the_models_surface():
    model = tiny()
    z = torch.randn(3, 8)
    for name in ("W", "W+"):
        space = StyleSpace(model, name)
        assert space.latent_dim == space_latent_dim(model, name) == (16 if name == "W" else 128)
        assert torch.allclose(space.decode(space.from_z(z)), model.decode(z), atol=1e-5)
        assert space.kind == "stylegan" and space.image_shape == (3, 32, 32) and space.can_project
        u = space.random_latents(2000, generator=torch.Generator().manual_seed(0))
        assert abs(float(u.var(dim=0).mean()) - 1.0) < 0.1  # normalised: one unit is w's spread
    with pytest.raises(ValueError):
        space_latent_dim(build_model("gan", TINY["gan"]), "W")


def test_perceptual_path_length_is_seeded_and_positive():
    model = tiny()
    torch.manual_seed(0)
    clf = build_model("classifier", {"image_size": 32, "channels": 3, "width": 4, "hidden": 16, "feature_dim": 8})
    clf.eval()
    a = perceptual_path_length(model, clf, "Z", n=40, seed=0, batch_size=20)
    b = perceptual_path_length(model, clf, "Z", n=40, seed=0, batch_size=20)
    w = perceptual_path_length(model, clf, "W", n=40, seed=0, batch_size=20)
    assert a == b and a["ppl"] > 0 and w["ppl"] > 0 and a["kept"] <= 40


def test_a_stylegan_trains_and_its_checkpoint_round_trips_and_resumes(tmp_path):
    spec = DataSpec("shapes", image_size=32, channels=1)
    data = load_dataset(spec, train=True)
    path = tmp_path / "sg.safetensors"
    config = {**TINY["stylegan"], "image_size": 32, "channels": 1, "r1_every": 2}
    model = create_model("stylegan", config, seed=0)
    run = TrainConfig(max_steps=4, batch_size=8, sample_every=0, device="cpu", checkpoint_path=str(path))
    losses = [e.losses for e in Trainer(model, data, run).run() if isinstance(e, StepDone)]
    assert len(losses) == 4 and all(np.isfinite(list(x.values())).all() for x in losses)
    assert any("r1" in x for x in losses)  # the lazy R1 ran
    assert float(model.w_avg.abs().sum()) > 0  # mean w is tracked
    ckpt = load_checkpoint(path, with_train_state=True)
    assert ckpt.kind == "stylegan" and ckpt.train_state["step"] == 4
    for name, tensor in model.state_dict().items():
        assert torch.equal(ckpt.model.state_dict()[name], tensor.cpu()), name
    z = torch.randn(2, 8)
    assert torch.equal(ckpt.model.decode(z), model.eval().decode(z))
    more = TrainConfig(max_steps=6, batch_size=8, sample_every=0, device="cpu", checkpoint_path=str(path))
    resumed = Trainer.from_checkpoint(path, data, more)
    assert resumed.step == 4
    for _ in resumed.run():
        pass
    assert load_checkpoint(path, with_train_state=True).train_state["step"] == 6


def _rewrite(path, change):
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()[META_KEY])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    change(meta)
    path.write_bytes(safetensors_bytes(tensors, metadata={META_KEY: json.dumps(meta)}))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("w_dim", 10**9, "w_dim must be between"),
        ("mapping_layers", 0, "mapping_layers must be between"),
        ("image_size", 28, "halves to 4x4"),
        ("w_dim", 32, "weights do not match"),  # in bounds, but the tensors are w_dim 16
        ("mixing_prob", 2.0, "mixing_prob must be between"),
    ],
)
def test_checkpoint_validation_rejects_a_lying_stylegan_config(tmp_path, field, value, message):
    path = save_checkpoint(tmp_path / "s.safetensors", build_model("stylegan", TINY["stylegan"]))
    load_checkpoint(path)  # the honest file opens

    def lie(meta):
        meta["config"][field] = value
        meta.pop("content_sha256", None)
        meta.pop("image_shape", None)

    _rewrite(path, lie)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


@pytest.mark.parametrize("kind", ["vae", "gan", "stylegan"])
def test_layer_probe_finds_each_generators_image_layers(kind):
    config = {**TINY[kind], **({"image_size": 32} if kind == "stylegan" else {})}
    torch.manual_seed(0)
    model = build_model(kind, config).eval()
    z0, z1 = np.zeros(model.latent_dim, np.float32), np.ones(model.latent_dim, np.float32)
    layers = generator_layers(model, z0)
    assert layers and all(len(info.shape) == 3 for info in layers)
    assert not any(name.startswith(("discriminator", "encoder")) for name in (i.name for i in layers))
    first = layers[0]
    a0, a1 = layer_activation(model, z0, first.name), layer_activation(model, z1, first.name)
    assert a0.shape == first.shape and not np.allclose(a0, a1)  # follows z
    grid = channel_grid(a0)
    assert grid.shape[2] == 1 and grid.min() >= 0 and grid.max() <= 1
    one = channel_grid(a0, channel=0)
    assert one.shape == (first.shape[1], first.shape[2], 1)
    with pytest.raises(KeyError):
        layer_activation(model, z0, "no.such.layer")
