"""Direction discovery and boundaries (engines.directions): each against an answer computed another way."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from engines import directions as dirs
from engines.models import build_model


def _aligned(a: np.ndarray, b: np.ndarray) -> float:
    """|cosine| of two vectors (a direction's sign is a convention)."""
    return abs(float(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("kind", ["gan", "vae"])
def test_sefa_returns_the_eigenvectors_of_the_first_layer(kind: str) -> None:
    torch.manual_seed(0)
    model = build_model(
        kind,
        {"image_size": 28, "channels": 1, "latent_dim": 6, "g_width": 8, "d_width": 8}
        if kind == "gan"
        else {"image_size": 28, "channels": 1, "latent_dim": 6, "width": 8},
    )
    found = dirs.sefa(model)
    # independently: right singular vectors of the first layer's weight, by torch, with z as input
    layer = model.generator[0] if kind == "gan" else model.decoder_fc[0]
    w = layer.weight.detach().double()
    a = w.reshape(w.shape[0], -1).T if kind == "gan" else w  # ConvTranspose2d weight is (in=D, out, k, k)
    _, s, vh = torch.linalg.svd(a, full_matrices=False)
    assert len(found) == 6
    for i, d in enumerate(found):
        assert d.value == pytest.approx(float(s[i]) ** 2, rel=1e-6)  # eigenvalue of A^T A = sigma^2
        assert _aligned(d.vector, vh[i].numpy()) > 1 - 1e-6
        assert np.linalg.norm(d.vector) == pytest.approx(1.0, abs=1e-5)
    assert [d.value for d in found] == sorted((d.value for d in found), reverse=True)


def test_sefa_refuses_a_model_without_readable_weights() -> None:
    with pytest.raises(ValueError, match="Jacobian"):
        dirs.sefa(LinearDecoder(np.eye(4, dtype=np.float32)))


class LinearDecoder(nn.Module):
    """decode(z) = 0.5 + M z as a (1, H, W) image: a decoder whose Jacobian is M everywhere."""

    has_latent = True

    def __init__(self, matrix: np.ndarray, side: int = 2) -> None:
        super().__init__()
        self.register_buffer("m", torch.as_tensor(matrix))
        self.side = side

    @property
    def device(self) -> torch.device:
        return self.m.device

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (1, self.side, self.side)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (0.5 + z @ self.m.T).view(-1, 1, self.side, self.side)


def test_the_jacobian_basis_of_a_linear_decoder_is_its_svd() -> None:
    rng = np.random.default_rng(0)
    m = (rng.normal(size=(16, 5)) * 0.02).astype(np.float32)  # 16 pixels from 5 latents, pixels stay in (0, 1)
    model = LinearDecoder(m, side=4)
    found = dirs.jacobian_basis(model, rng.normal(size=5).astype(np.float32))
    _, s, vt = np.linalg.svd(m.astype(np.float64))
    assert [d.value for d in found] == pytest.approx(list(s), rel=1e-3)
    for d, expected in zip(found, vt, strict=True):
        assert _aligned(d.vector, expected) > 0.999


def test_the_jacobian_basis_depends_on_where_it_is_taken() -> None:
    torch.manual_seed(0)
    model = build_model("vae", {"image_size": 28, "channels": 1, "latent_dim": 4, "width": 8}).eval()
    a = dirs.jacobian_basis(model, np.zeros(4, np.float32), k=1)[0]
    b = dirs.jacobian_basis(model, np.full(4, 2.5, np.float32), k=1)[0]
    assert a.value != pytest.approx(b.value, rel=1e-3)


def test_pca_directions_come_from_principal_directions() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(size=(500, 3)) * np.array([5.0, 1.0, 0.2])
    found = dirs.pca_directions(z, k=2)
    assert len(found) == 2 and _aligned(found[0].vector, np.array([1.0, 0, 0])) > 0.99
    assert found[0].value > found[1].value


def test_a_boundary_recovers_the_normal_that_made_the_labels() -> None:
    rng = np.random.default_rng(2)
    normal = rng.normal(size=16)
    normal /= np.linalg.norm(normal)
    z = rng.normal(size=(3000, 16))
    has = z @ normal + 0.3 > 0
    b = dirs.fit_boundary(z, has, "made")
    assert float(b.normal @ normal) > 0.99  # same sign too: the normal points toward "has"
    assert b.accuracy > 0.95
    d = b.distance(z)
    assert np.mean((d > 0) == has) > 0.97


def test_a_few_dozen_tags_give_a_usable_boundary() -> None:
    rng = np.random.default_rng(3)
    normal = np.eye(8)[0]
    z = rng.normal(size=(30, 8))
    b = dirs.fit_boundary(z, z[:, 0] > 0, "tagged")
    assert float(b.normal @ normal) > 0.8


def test_a_boundary_needs_both_sides() -> None:
    z = np.random.default_rng(0).normal(size=(20, 4))
    with pytest.raises(ValueError, match="at least 2"):
        dirs.fit_boundary(z, np.ones(20, bool), "all")


def test_a_readout_recovers_a_continuous_attribute() -> None:
    rng = np.random.default_rng(4)
    z = rng.normal(size=(1000, 6))
    b = dirs.fit_readout(z, 2.0 * z[:, 3] - 1.0 + 0.01 * rng.normal(size=1000), "c")
    assert float(b.normal[3]) > 0.99 and b.accuracy > 0.99 and b.kind == "continuous"


def test_a_conditional_direction_is_orthogonal_to_every_kept_normal() -> None:
    rng = np.random.default_rng(5)
    a, k1, k2 = (rng.normal(size=10) for _ in range(3))
    v = dirs.conditional(a, [k1, k2])
    assert abs(v @ k1) < 1e-6 and abs(v @ k2) < 1e-6
    assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5) and v @ a > 0
    with pytest.raises(ValueError, match="span"):
        dirs.conditional(k1 + k2, [k1, k2])


def test_an_edit_to_distance_lands_every_latent_at_that_distance() -> None:
    rng = np.random.default_rng(6)
    z = rng.normal(size=(50, 5))
    b = dirs.fit_boundary(z, z[:, 0] + z[:, 1] > 0, "a")
    keep = dirs.fit_readout(z, z[:, 1], "k")
    v = dirs.conditional(b.normal, [keep.normal])
    edited = dirs.edit_to_distance(z, b, 1.5, along=v)
    assert b.distance(edited) == pytest.approx(np.full(50, 1.5), abs=1e-4)
    assert keep.distance(edited) == pytest.approx(keep.distance(z), abs=1e-4)  # the kept readout did not move


def test_a_conditional_shift_adapts_to_the_other_attributes() -> None:
    # z = labels @ W + interaction: the attribute a moves z0 by +1, and by +3 more when b is on
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, size=(2000, 2)).astype(np.float64)
    z = np.c_[labels[:, 0] * (1 + 3 * labels[:, 1]), labels[:, 1], np.zeros(2000)] + 0.01 * rng.normal(size=(2000, 3))
    shift = dirs.ConditionalShift(z, labels, index=0).shift(np.array([[0.0, 0.0], [0.0, 1.0]]))
    assert shift[0] == pytest.approx([1.0, 0.0, 0.0], abs=0.01)
    assert shift[1] == pytest.approx([4.0, 0.0, 0.0], abs=0.01)


def test_a_discovered_direction_is_named_after_the_boundary_it_matches() -> None:
    eye = np.eye(4, dtype=np.float32)
    boundaries = {
        "glasses": dirs.Boundary("glasses", eye[0], 0.0, 1.0, "binary", 10),
        "smiling": dirs.Boundary("smiling", eye[1], 0.0, 1.0, "binary", 10),
    }
    assert dirs.match_attribute(np.array([-0.9, 0.1, 0.3, 0.0]), boundaries) == (
        "glasses",
        pytest.approx(-0.943, abs=1e-3),
    )
    assert dirs.match_attribute(np.array([0.5, 0.5, 0.5, 0.5]), boundaries) is None


def test_a_strip_steps_in_prior_sigmas_along_the_unit_direction() -> None:
    strip = dirs.along(np.zeros(3, np.float32), np.array([0.0, 2.0, 0.0]), [-3, 0, 3])
    assert strip == pytest.approx(np.array([[0, -3, 0], [0, 0, 0], [0, 3, 0]], np.float32))


# --- the tab's helpers: labels from a classifier or a dataset, and scores along a direction -------
class Brightness(nn.Module):
    """A 'classifier' that reads the mean pixel: bright (binary, > 0.5) and level (continuous)."""

    label_kinds = {"bright": "binary", "level": "continuous"}

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # gives it a device

    def predict_labels(self, images: torch.Tensor) -> torch.Tensor:
        level = images.mean(dim=(1, 2, 3))
        return torch.stack([(level > 0.5).float(), level], dim=1)

    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        level = images.mean(dim=(1, 2, 3))
        return {"bright": torch.sigmoid((level - 0.5) * 50), "level": level}


def test_classifier_boundaries_point_where_the_reading_grows() -> None:
    rng = np.random.default_rng(1)
    m = (rng.normal(size=(16, 5)) * 0.02).astype(np.float32)
    model = LinearDecoder(m, side=4)
    model.latent_dim = 5
    found = dirs.classifier_boundaries(model, Brightness(), n=400)
    grows = m.mean(axis=0)  # mean pixel = 0.5 + grows . z
    assert set(found) == {"bright", "level"}
    assert found["bright"].kind == "binary" and found["level"].kind == "continuous"
    for b in found.values():
        assert float(b.normal @ grows) / np.linalg.norm(grows) > 0.95


def test_dataset_boundaries_split_a_categorical_label_into_one_boundary_per_value() -> None:
    z = np.random.default_rng(2).normal(size=(600, 3))
    category = np.digitize(z[:, 0], [-0.5, 0.5])  # 0, 1, 2 along the first axis
    labels = np.c_[category, z[:, 1]]
    found = dirs.dataset_boundaries(z, labels, ["shape", "size"], {"shape": "categorical", "size": "continuous"})
    assert set(found) == {"shape = 0", "shape = 1", "shape = 2", "size"}
    assert found["shape = 0"].normal[0] < -0.9 and found["shape = 2"].normal[0] > 0.9
    assert found["size"].normal[1] > 0.99 and found["size"].kind == "continuous"


def test_scores_along_a_direction_follow_the_decoded_images() -> None:
    rng = np.random.default_rng(3)
    m = (rng.normal(size=(16, 5)) * 0.02).astype(np.float32)
    model = LinearDecoder(m, side=4)
    sigmas = [-3, -1, 0, 1, 3]
    images, scores = dirs.scores_along(model, Brightness(), np.zeros(5, np.float32), m.mean(axis=0), sigmas)
    assert images.shape == (5, 4, 4, 1)
    np.testing.assert_allclose(scores["level"], images.mean(axis=(1, 2, 3)), atol=1e-6)
    assert np.all(np.diff(scores["level"]) > 0) and np.all(np.diff(scores["bright"]) >= 0)
    assert dirs.scores_along(model, None, np.zeros(5, np.float32), m[0], sigmas)[1] == {}
