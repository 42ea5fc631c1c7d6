"""The classifiers that judge the generative models: heads from labels, training, checkpoints, CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from engines.checkpoint import load_checkpoint, save_checkpoint
from engines.cli import main
from engines.data import DataSpec, FacesDataset, TensorImageDataset, load_dataset
from engines.evaluation import classifier_metrics, find_classifier
from engines.models import Classifier, build_model
from engines.models.classifier import config_for_dataset
from engines.training import EpochEnd, SampleGrid, StepDone, TrainConfig, Trainer, create_model
from tests.helpers import TINY

SMALL = {"width": 8, "hidden": 64, "feature_dim": 32}


def faces(n: int, train: bool = True) -> FacesDataset:
    return FacesDataset(DataSpec("faces", image_size=28, channels=1), train, length=n)


def digits_like(n: int = 64) -> TensorImageDataset:
    """An MNIST-shaped set with one-hot labels "0".."9" (random pixels)."""
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 28, 28), generator=gen, dtype=torch.uint8)
    labels = torch.nn.functional.one_hot(torch.arange(n) % 10, 10).float()
    names = [str(d) for d in range(10)]
    return TensorImageDataset(DataSpec("mnist"), images, labels, names, {c: "class" for c in names})


def test_one_hot_labels_give_one_softmax_and_attributes_give_one_head_each() -> None:
    lenet = build_model("classifier", config_for_dataset(digits_like()))
    assert [(h.kind, h.stop - h.start) for h in lenet.heads] == [("class", 10)]
    x = torch.rand(5, 1, 28, 28)
    assert lenet(x).shape == (5, 10) and lenet.features(x).shape == (5, 128)
    probs = lenet.class_probs(x)
    assert torch.allclose(probs.sum(1), torch.ones(5)) and torch.allclose(probs[:, 3], lenet.predict(x)["3"])

    attrs = build_model("classifier", config_for_dataset(faces(4), **SMALL))
    assert [(h.name, h.kind) for h in attrs.heads] == [
        ("smiling", "binary"),
        ("glasses", "binary"),
        ("hair_color", "continuous"),
        ("face_width", "continuous"),
        ("skin_tone", "continuous"),
        ("eye_size", "continuous"),
    ]
    assert attrs.class_head is None
    predicted = attrs.predict(x)
    assert list(predicted) == faces(1).label_names and all(v.shape == (5,) for v in predicted.values())
    assert ((predicted["glasses"] >= 0) & (predicted["glasses"] <= 1)).all()  # binary: a probability
    labels = attrs.predict_labels(x)
    assert labels.shape == (5, 6) and set(labels[:, :2].unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("size,channels", [(32, 3), (64, 1)])
def test_other_sizes_and_channels_build(size: int, channels: int) -> None:
    model = build_model(
        "classifier",
        {
            "image_size": size,
            "channels": channels,
            "label_names": ["a", "b"],
            "label_kinds": ["binary", "continuous"],
            **SMALL,
        },
    )
    images = torch.rand(2, channels, size, size)
    out = model(images)
    assert out.shape == (2, 2) and torch.isfinite(out).all()
    assert model.features(images).shape == (2, SMALL.get("feature_dim", 128))  # the Frechet features
    assert not torch.allclose(out[0], out[1])  # the output depends on the image
    labels = torch.tensor([[1.0, 0.3], [0.0, 0.7]])
    model.loss(out, labels).backward()  # every parameter learns from both heads' losses
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ValueError, match="kinds"):
        build_model("classifier", {"label_names": ["a"], "label_kinds": ["nominal"]})
    with pytest.raises(ValueError, match="categories"):
        build_model("classifier", {"label_names": ["a"], "label_kinds": ["categorical"]})
    with pytest.raises(ValueError, match="image_size"):
        build_model("classifier", {"image_size": 30})


def test_attribute_classifier_learns_glasses_within_a_few_dozen_steps() -> None:
    train, test = faces(1024), faces(256, train=False)
    model = create_model("classifier", config_for_dataset(train, **SMALL), seed=0)
    config = TrainConfig(epochs=3, batch_size=32, lr=3e-3, sample_every=1)  # grids asked for: a classifier has none
    events = list(Trainer(model, train, config, test).run())
    assert not any(isinstance(e, SampleGrid) for e in events)
    losses = [e.losses["loss"] for e in events if isinstance(e, StepDone)]
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10])
    ends = [e.val_losses for e in events if isinstance(e, EpochEnd)]
    first, last = ends[0], ends[-1]
    assert last["glasses_acc"] > 0.9 and last["glasses_acc"] > first["glasses_acc"]
    assert last["hair_color_mae"] < first["hair_color_mae"] and set(last) >= {"loss", "smiling_acc", "eye_size_mae"}


def test_a_resumed_classifier_run_follows_the_same_learning_rate_schedule(tmp_path: Path) -> None:
    data = faces(96)
    config = {**config_for_dataset(data), **SMALL}
    full = TrainConfig(epochs=4, batch_size=32, seed=2, sample_every=None)  # 12 steps, lr decays to 0

    def losses(events) -> list[float]:
        return [e.losses["loss"] for e in events if isinstance(e, StepDone)]

    uninterrupted = Trainer(create_model("classifier", config, seed=2), data, full)
    expected = losses(uninterrupted.run())
    assert uninterrupted.optimizers["main"].param_groups[0]["lr"] < 1e-4  # cosine: near 0 at the last step
    path = tmp_path / "half.safetensors"
    first = Trainer(create_model("classifier", config, seed=2), data, replace(full, checkpoint_path=str(path)))
    part = []
    for event in first.run():  # stopped (not max_steps, which would make a shorter schedule) after 5 steps
        if isinstance(event, StepDone):
            part.append(event.losses["loss"])
            if event.step == 5:
                first.stop()
    assert len(part) == 5
    resumed = Trainer.from_checkpoint(path, data, replace(full, checkpoint_path=str(path)))
    assert part + losses(resumed.run()) == expected  # bit-for-bit on the CPU


def test_checkpoint_round_trip_rebuilds_the_same_classifier(tmp_path: Path) -> None:
    data = faces(8)
    model = create_model("classifier", config_for_dataset(data, **SMALL), seed=3).eval()
    path = save_checkpoint(tmp_path / "c.safetensors", model, dataset=data.spec.to_dict(), label_names=data.label_names)
    ckpt = load_checkpoint(path)
    assert ckpt.kind == "classifier" and isinstance(ckpt.model, Classifier)
    assert ckpt.model.config == model.config and ckpt.model.heads == model.heads
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(ckpt.model(x), model(x)) and torch.equal(ckpt.model.features(x), model.features(x))


def test_cli_trains_a_classifier_evaluates_it_and_will_not_sample_from_it(tmp_path: Path, capsys) -> None:
    # in-process for speed (tests/test_cli.py runs the real process): the same parser and code paths
    out = tmp_path / "clf.safetensors"
    assert (
        main(
            [
                "train",
                "--model",
                "classifier",
                "--dataset",
                "shapes",
                "--image-size",
                "28",
                "--channels",
                "1",
                "--batch-size",
                "32",
                "--max-steps",
                "6",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert not out.with_name("clf_samples.png").exists()
    ckpt = load_checkpoint(out)
    assert ckpt.kind == "classifier" and ckpt.model.config.label_kinds[0] == "categorical"
    assert ckpt.model.config.categories == (3,) and ckpt.training["step"] == 6
    capsys.readouterr()

    assert main(["eval", str(out), "--limit", "64", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert 0 <= metrics["shape_acc"] <= 1 and metrics["x_mae"] >= 0 and metrics["images"] == 64
    assert main(["eval", str(out), "--limit", "64"]) == 0
    assert f"shape_acc          {metrics['shape_acc']:.4f}" in capsys.readouterr().out

    assert main(["sample", str(out), "--out", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert "does not generate" in err and "Traceback" not in err


def test_faces_arithmetic_of_a_vae_is_judged_by_the_classifier(tmp_path: Path) -> None:
    data = faces(8)
    vae = create_model("vae", {**TINY["vae"], "image_size": 28, "channels": 1}, seed=0).eval()
    clf = create_model("classifier", config_for_dataset(data, **SMALL), seed=0).eval()
    spec = data.spec.to_dict()
    vae_path = save_checkpoint(tmp_path / "v.safetensors", vae, dataset=spec, label_names=data.label_names)
    clf_path = save_checkpoint(tmp_path / "c.safetensors", clf, dataset=spec, label_names=data.label_names)
    result = classifier_metrics(load_checkpoint(vae_path), load_checkpoint(clf_path), edits=10, trials=5)
    assert "samples" not in result  # a VAE's sample scores only when asked for
    for name in ("glasses", "smiling"):
        r = result["attribute_arithmetic"][name]
        assert r["latents"].startswith("encoded") and r["tolerance"] == 0.15 and "tuned_strength" in r
        assert all(v is None or 0 <= v <= 1 for k, v in r.items() if k in ("rate", "gained", "others_kept"))
    assert result["exemplar_arithmetic"]["trials"] == 5
    # every direction-lab method is reported per attribute: a rate, or why it cannot be built (this VAE's
    # latent is smaller than the attributes a conditional boundary must keep)
    for method, rates in result["clean_edits"]["methods"].items():
        for name in ("glasses", "smiling"):
            r = rates[name]
            assert (r["rate"] is None and r["unavailable"]) or 0 <= r["rate"] <= 1, (method, r)
    assert "span" in result["clean_edits"]["methods"]["conditional_boundary"]["glasses"]["unavailable"]

    mnist_path = save_checkpoint(tmp_path / "m.safetensors", clf, dataset={"name": "mnist"})
    with pytest.raises(ValueError, match="trained on mnist"):
        classifier_metrics(load_checkpoint(vae_path), load_checkpoint(mnist_path))


def test_a_missing_default_classifier_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="--classifier") as error:
        find_classifier("fashion-mnist")
    assert "classifier-fashion-mnist.safetensors" in str(error.value) and "\n" not in str(error.value)


def test_an_image_folder_gan_gets_its_train_vs_heldout_baseline_only_from_its_training_folder(tmp_path: Path) -> None:
    # An image folder has no split: the baseline's training images must come from the folder the model
    # trained on (train_root), not from the held-out folder compared with itself.
    mini = Path(__file__).parent / "data" / "cifar-mini"
    held_out = tmp_path / "test"
    for folder in sorted(mini.iterdir())[:5]:  # half of the classes stand in for a held-out folder
        (held_out / folder.name).mkdir(parents=True)
        for f in sorted(folder.iterdir())[:4]:
            (held_out / folder.name / f.name).write_bytes(f.read_bytes())
    spec = DataSpec("folder", root=str(mini), image_size=32, channels=3)
    data = load_dataset(spec)
    assert data.label_names[0] == "airplane" and len(data.label_names) == 10
    gan = create_model("gan", {**TINY["gan"], "image_size": 32, "channels": 3}, seed=0).eval()
    clf = create_model("classifier", config_for_dataset(data, **SMALL), seed=0).eval()
    paths = [
        save_checkpoint(tmp_path / f"{n}.safetensors", m, dataset=spec.to_dict(), label_names=data.label_names)
        for n, m in (("g", gan), ("c", clf))
    ]
    ckpt, judge = (load_checkpoint(p) for p in paths)
    alone = classifier_metrics(ckpt, judge, str(held_out), n=40)["samples"]
    assert alone["real_images"] == 20 and "train_test_fid" not in alone
    paired = classifier_metrics(ckpt, judge, str(held_out), n=40, train_root=str(mini))["samples"]
    assert paired["fid"] == alone["fid"] and paired["train_test_fid"] > 0


def test_an_image_folder_model_finds_the_classifier_of_its_size_and_classes(tmp_path: Path) -> None:
    def folder_classifier(name: str, size: int, channels: int, classes: list[str]) -> Path:
        spec = DataSpec("folder", root="/elsewhere", image_size=size, channels=channels)
        config = {"image_size": size, "channels": channels, "label_names": classes, "label_kinds": ["class"] * 2}
        model = create_model("classifier", {**config, **SMALL}, seed=0)
        return save_checkpoint(tmp_path / name, model, dataset=spec.to_dict(), label_names=classes)

    (tmp_path / "classifier-broken.safetensors").write_bytes(b"not a checkpoint")
    colour = folder_classifier("classifier-photos.safetensors", 32, 3, ["cat", "dog"])
    grey = folder_classifier("classifier-scans.safetensors", 28, 1, ["cat", "dog"])
    photos, scans = (
        {"name": "folder", "image_size": 32, "channels": 3},
        {"name": "folder", "image_size": 28, "channels": 1},
    )
    assert find_classifier("folder", data=photos, labels=["cat", "dog"], folders=[tmp_path]) == colour
    with pytest.raises(ValueError, match="without classes"):
        find_classifier("folder", data=photos, folders=[tmp_path])
    assert find_classifier("folder", data=scans, labels=["cat", "dog"], folders=[tmp_path]) == grey
    with pytest.raises(ValueError, match="--classifier") as error:
        find_classifier("folder", data=photos, labels=["ship", "truck"], folders=[tmp_path])
    assert "ship, truck" in str(error.value) and "\n" not in str(error.value)
