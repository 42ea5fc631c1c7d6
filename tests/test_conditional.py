"""Class-conditional generators (engines.models.conditional): the class input, blends, training on labels,
checkpoints, the fast map decode, evaluation, the CLI. Tiny models on CPU, procedural labelled data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engines import fast_decode
from engines.checkpoint import META_KEY, CheckpointError, load_checkpoint, save_checkpoint
from engines.cli import main
from engines.data import DataSpec, TensorImageDataset
from engines.metrics import class_agreement
from engines.models import build_model
from engines.models.conditional import ClassView, blend, class_input, one_hot
from engines.training import TrainConfig, Trainer, create_model
from engines.training.run import RunSettings
from tests.helpers import TINY

NAMES = ["dark", "bright"]


def conditional(kind: str = "gan", names=tuple(NAMES), **config) -> dict:
    return {**TINY[kind], "num_classes": len(names), "class_names": list(names), **config}


def two_classes(n: int = 256, size: int = 28, channels: int = 1, train: bool = True) -> TensorImageDataset:
    """Images labelled "dark" (pixels near 0.15) or "bright" (near 0.85), one-hot labels of kind "class"."""
    gen = torch.Generator().manual_seed(0 if train else 1)
    label = torch.arange(n) % 2
    level = 0.15 + 0.7 * label.float()
    images = (level[:, None, None, None] + 0.1 * torch.randn(n, channels, size, size, generator=gen)).clamp(0, 1)
    spec = DataSpec("mnist", image_size=size, channels=channels)
    labels = torch.nn.functional.one_hot(label, 2).float()
    return TensorImageDataset(spec, (images * 255).round().to(torch.uint8), labels, NAMES, {c: "class" for c in NAMES})


@pytest.mark.parametrize("kind", ["gan", "stylegan"])
def test_shapes_and_the_class_input(kind: str) -> None:
    model = build_model(kind, conditional(kind)).eval()
    c, h, w = model.image_shape
    z = torch.randn(3, model.latent_dim)
    assert model.num_classes == 2 and model.class_names == tuple(NAMES)
    assert model.decode(z, classes=1).shape == (3, c, h, w) and model.sample(5).shape == (5, c, h, w)
    assert model.critic(torch.rand(3, c, h, w), classes=torch.tensor([0, 1, 1])).shape == (3,)
    # A class index, (B,) indices and one-hot rows are the same input.
    y = one_hot(torch.tensor([1, 0, 1]), 2)
    assert torch.equal(model.decode(z, classes=torch.tensor([1, 0, 1])), model.decode(z, classes=y))
    assert torch.equal(model.decode(z, classes=1), model.decode(z, classes=one_hot(1, 2)))
    with pytest.raises(ValueError, match="needs classes"):
        model.decode(z)
    with pytest.raises(ValueError, match="0..1"):
        model.decode(z, classes=2)
    with pytest.raises(ValueError, match=r"\(K,\) or \(B, K\)"):
        model.decode(z, classes=torch.ones(3, 3))
    plain = build_model(kind, TINY[kind])
    assert plain.num_classes == 0 and plain.class_names == ()
    with pytest.raises(ValueError, match="not conditional"):
        plain.decode(z, classes=0)


@pytest.mark.parametrize("kind", ["gan", "stylegan"])
def test_a_blend_of_one_hot_rows_is_that_class_and_interpolates_the_embedding(kind: str) -> None:
    model = build_model(kind, conditional(kind, names=("a", "b", "c"))).eval()
    z = torch.randn(4, model.latent_dim)
    a, b = model.decode(z, classes=0), model.decode(z, classes=2)
    assert torch.equal(model.decode(z, classes=blend(0, 2, 0.0, 3)), a)
    assert torch.equal(model.decode(z, classes=blend(0, 2, 1.0, 3)), b)
    middle = model.decode(z, classes=blend(0, 2, 0.5, 3))
    assert not torch.allclose(middle, a) and not torch.allclose(middle, b)
    # The class embedding is linear in y: a blend's embedding is the blend of the embeddings.
    if kind == "gan":
        first = model.generator[0]
        embed = [first(torch.cat([z, class_input(y, 4, 3, z.device)], 1)[..., None, None]) for y in (0, 2)]
        half = first(torch.cat([z, class_input(blend(0, 2, 0.5, 3), 4, 3, z.device)], 1)[..., None, None])
        torch.testing.assert_close(half, (embed[0] + embed[1]) / 2)
    else:
        e = model.mapping_net.embed
        torch.testing.assert_close(
            e(blend(0, 2, 0.25, 3)[None]), 0.75 * e(one_hot(0, 3)[None]) + 0.25 * e(one_hot(2, 3)[None])
        )


def test_a_view_draws_its_class_and_the_model_is_left_alone() -> None:
    model = build_model("gan", conditional()).eval()
    z = torch.randn(2, model.latent_dim)
    view = ClassView(model, one_hot(1, 2))
    assert torch.equal(view.decode(z), model.decode(z, classes=1))
    assert view.latent_dim == model.latent_dim and view.num_classes == 2 and view.kind == "gan"
    assert torch.equal(view.latent_weight(), model.latent_weight())
    with pytest.raises(ValueError, match="2 weights"):
        ClassView(model, torch.ones(3))


def _class_gap(model, z: torch.Tensor) -> float:
    """How much brighter the "bright" class's images are than the "dark" class's, for the same z."""
    with torch.no_grad():
        return float(model.decode(z, classes=1).mean() - model.decode(z, classes=0).mean())


@pytest.mark.parametrize("kind,size,channels,gap", [("gan", 28, 1, 0.3), ("stylegan", 32, 3, 0.1)])
def test_training_on_labels_teaches_each_class(kind: str, size: int, channels: int, gap: float) -> None:
    """A GAN's losses need not fall; what must come is the class: the same z drawn "bright" ends up
    brighter than drawn "dark" (the data's gap is 0.7; the style generator, whose mapping learns at
    0.01x, gets less far in its 40 steps), and D's loss falls from its start."""
    data = two_classes(256, size, channels)
    widths = {"g_width": 16, "d_width": 16} if kind == "gan" else {}
    model = create_model(kind, conditional(kind, **widths), seed=0)
    z = torch.randn(64, model.latent_dim, generator=torch.Generator().manual_seed(3))
    before = _class_gap(model, z)
    steps = 60 if kind == "gan" else 40
    events = list(Trainer(model, data, TrainConfig(max_steps=steps, batch_size=32, lr=2e-3, sample_every=None)).run())
    d_losses = [e.losses["d_loss"] for e in events if hasattr(e, "losses") and "d_loss" in e.losses]
    assert np.mean(d_losses[-10:]) < np.mean(d_losses[:3])
    model.eval()
    assert abs(before) < 0.05 and _class_gap(model, z) > gap


def test_the_sample_grid_has_a_row_per_class() -> None:
    data = two_classes(64)
    model = create_model("gan", conditional(), seed=0)
    trainer = Trainer(model, data, TrainConfig(max_steps=1, batch_size=16, n_samples=6, sample_every=None))
    grid = trainer.sample_grid()
    size = 28 + 2  # image and padding
    assert grid.shape[:2] == (2 * size + 2, 3 * size + 2)  # 2 class rows of 3
    with pytest.raises(ValueError, match="labelled with exactly those classes"):
        Trainer(create_model("gan", conditional(names=("x", "y")), seed=0), data, TrainConfig(max_steps=1))


def test_a_checkpoint_keeps_the_classes(tmp_path: Path) -> None:
    model = create_model("stylegan", conditional("stylegan"), seed=0).eval()
    path = save_checkpoint(tmp_path / "c.safetensors", model, label_names=NAMES)
    back = load_checkpoint(path).model
    assert back.num_classes == 2 and back.class_names == tuple(NAMES)
    z = torch.randn(2, model.latent_dim)
    assert torch.equal(back.decode(z, classes=1), model.decode(z, classes=1))


def _rewrite_config(path: Path, **changes) -> None:
    """The same tensors under metadata whose config says otherwise (a lying file)."""
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()[META_KEY])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["config"].update(changes)
    save_file(tensors, str(path), metadata={META_KEY: json.dumps(meta)})


@pytest.mark.parametrize(
    "changes,reason",
    [
        ({"num_classes": -1}, "num_classes must be between 0"),
        ({"num_classes": 10**9}, "num_classes must be between 0"),
        ({"num_classes": True}, "num_classes must be a whole number"),
        ({"class_names": ["dark"]}, "class_names must name each of the 2 classes"),
        ({"class_names": ["dark", 7]}, "non-empty strings"),
        ({"num_classes": 3, "class_names": ["a", "b", "c"]}, "weights do not match"),
    ],
)
def test_a_lying_conditional_checkpoint_is_refused_in_one_line(tmp_path: Path, changes: dict, reason: str) -> None:
    path = save_checkpoint(tmp_path / "c.safetensors", build_model("gan", conditional()), label_names=NAMES)
    _rewrite_config(path, **changes)
    with pytest.raises(CheckpointError, match=reason) as error:
        load_checkpoint(path)
    assert "\n" not in str(error.value)


def test_the_map_decode_follows_the_class_and_onnx_is_not_used() -> None:
    """The maps' fast path exports z -> image to ONNX; a conditional decode takes the class too, so it
    stays with PyTorch and every class gives its own map."""
    model = build_model("gan", conditional()).eval()
    decoder = fast_decode.pick_decoder(ClassView(model, one_hot(0, 2)))
    assert decoder.name in ("torch", "bfloat16") and decoder.name != "onnxruntime"
    if decoder.name == "torch":
        assert "class" in decoder.note
    z = np.random.default_rng(0).standard_normal((4, model.latent_dim)).astype(np.float32)
    dark = fast_decode.torch_decoder(ClassView(model, one_hot(0, 2)))(z)
    bright = fast_decode.torch_decoder(ClassView(model, one_hot(1, 2)))(z)
    assert not np.allclose(dark, bright)
    expected = model.decode(torch.from_numpy(z), classes=1).permute(0, 2, 3, 1).detach().numpy()
    np.testing.assert_allclose(bright, expected, atol=1e-6)
    picked_bright = fast_decode.pick_decoder(ClassView(model, one_hot(1, 2)))(z)  # whichever path it picks
    assert fast_decode.psnr(picked_bright, expected) >= fast_decode.MIN_PSNR


def test_class_agreement_reads_each_class_with_the_classifier() -> None:
    """A "classifier" that reads the mean brightness (dark < 0.5 < bright) judges a model whose class
    decides the brightness: full agreement; the same model with its classes swapped: none."""

    class Brightness(torch.nn.Module):
        image_shape = (1, 28, 28)
        class_head = type("Head", (), {"columns": (0, 1)})()

        def class_probs(self, x: torch.Tensor) -> torch.Tensor:
            bright = (x.mean(dim=(1, 2, 3)) > 0.5).long()
            return one_hot(bright, 2)

        def forward(self, x):  # pragma: no cover - not called
            return x

    class ByClass(torch.nn.Module):
        num_classes, class_names = 2, ("dark", "bright")

        def __init__(self, swap: bool = False):
            super().__init__()
            self.swap = swap

        def sample(self, n, generator=None, classes=None):
            level = float(classes != self.swap) * 0.8 + 0.1
            return torch.full((n, 1, 28, 28), level)

    judge = Brightness()
    right = class_agreement(ByClass(), judge, per_class=20, batch_size=8)
    assert right["overall"] == 1.0 and right["per_class"] == {"dark": 1.0, "bright": 1.0}
    wrong = class_agreement(ByClass(swap=True), judge, per_class=20)
    assert wrong["overall"] == 0.0 and wrong["confused_with"] == {"dark": "bright", "bright": "dark"}


def test_run_settings_and_the_cli_flag_make_and_keep_a_conditional_run(tmp_path: Path, capsys) -> None:
    spec = DataSpec("mnist")
    config = RunSettings(kind="gan", dataset="mnist", conditional=True).model_config(spec)
    assert config["num_classes"] == 10 and config["class_names"] == [str(d) for d in range(10)]
    assert (
        "num_classes" not in RunSettings(kind="gan", dataset="mnist").model_config(spec)
        or not (RunSettings(kind="gan", dataset="mnist").model_config(spec)["num_classes"])
    )
    assert main(["train", "--model", "vae", "--dataset", "mnist", "--conditional"]) == 2
    assert "--conditional applies to gan and stylegan models only" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--model",
                "gan",
                "--dataset",
                "shapes",
                "--conditional",
                "--out",
                str(tmp_path / "x.safetensors"),
            ]
        )
        == 2
    )
    assert "labelled by class" in capsys.readouterr().err


def test_export_refuses_a_conditional_model(tmp_path: Path, capsys) -> None:
    path = save_checkpoint(tmp_path / "c.safetensors", build_model("gan", conditional()), label_names=NAMES)
    assert main(["export", str(path), "--onnx", str(tmp_path / "onnx")]) == 1
    assert "class-conditional" in capsys.readouterr().err


def test_sample_and_render_draw_the_class_asked_for(tmp_path: Path, capsys) -> None:
    from PIL import Image

    model = build_model("gan", conditional())
    with torch.no_grad():  # a large class embedding: "dark" and "bright" draw visibly different images
        model.generator[0].weight[model.latent_dim :].normal_(0.0, 1.0)
    path = save_checkpoint(tmp_path / "c.safetensors", model.eval(), label_names=NAMES)
    pngs = {}
    for name in NAMES:
        out = tmp_path / f"{name}.png"
        assert main(["sample", str(path), "--n", "4", "--class", name, "--scale", "1", "--out", str(out)]) == 0
        pngs[name] = np.asarray(Image.open(out))
    assert not np.array_equal(pngs["dark"], pngs["bright"])
    assert main(["sample", str(path), "--n", "4", "--class", "2", "--out", str(tmp_path / "x.png")]) == 2
    assert "not one of c.safetensors's classes (dark, bright)" in capsys.readouterr().err
    strip = tmp_path / "walk.png"
    base = ["render", str(path), "--walk", "random", "--seconds", "0.1", "--fps", "20", "--size", "28"]
    assert main([*base, "--out", str(strip)]) == 2
    assert "pass --class NAME" in capsys.readouterr().err
    assert main([*base, "--class", "bright", "--out", str(strip)]) == 0
    meta = json.loads(strip.with_name("walk_latents.json").read_text())
    assert meta["class_mix"] == [0.0, 1.0]
    latents = np.load(strip.with_name("walk_latents.npy"))
    frames = np.asarray(Image.open(strip))
    first = model.decode(torch.as_tensor(latents[:1]), classes=1)[0, 0].detach().numpy()
    assert abs(frames[:28, :28].astype(float) / 255 - first).max() < 0.01  # the first frame, drawn "bright"
