"""engines.latent: the latent maths, checked against hand computations; no Qt."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engines import latent
from engines.data import DataSpec, load_dataset
from engines.encoded import encode_labelled
from engines.training import create_model

RNG = np.random.default_rng(0)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x)


# --- interpolation ------------------------------------------------------------------------------
def test_lerp_scalar_and_array():
    a, b = np.array([0.0, 2.0]), np.array([4.0, -2.0])
    np.testing.assert_allclose(latent.lerp(a, b, 0.25), [1.0, 1.0])
    path = latent.lerp(a, b, np.array([0.0, 0.5, 1.0]))
    assert path.shape == (3, 2) and path.dtype == np.float32
    np.testing.assert_allclose(path, [[0, 2], [2, 0], [4, -2]])


def test_slerp_endpoints_and_unit_norm():
    a, b = unit(RNG.standard_normal(16)), unit(RNG.standard_normal(16))
    ts = np.linspace(0, 1, 11)
    path = latent.slerp(a, b, ts)
    np.testing.assert_allclose(path[0], a, atol=1e-6)
    np.testing.assert_allclose(path[-1], b, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 1.0, atol=1e-6)
    # constant angular speed: consecutive frames are equally far apart on the sphere
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    np.testing.assert_allclose(steps, steps[0], rtol=1e-5)
    # lengths are interpolated linearly for non-unit vectors
    mid = latent.slerp(2 * a, 4 * b, 0.5)
    assert np.linalg.norm(mid) == pytest.approx(3.0, rel=1e-6)


def test_slerp_near_parallel_and_opposite_and_zero():
    a = unit(RNG.standard_normal(8))
    b = unit(a + 1e-7 * RNG.standard_normal(8))
    path = latent.slerp(a, b, np.linspace(0, 1, 5))
    assert np.isfinite(path).all()
    np.testing.assert_allclose(path[-1], b, atol=1e-6)
    opposite = latent.slerp(a, -a, np.linspace(0, 1, 5))
    assert np.isfinite(opposite).all()
    np.testing.assert_allclose(np.linalg.norm(opposite, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(opposite[-1], -a, atol=1e-6)
    np.testing.assert_allclose(latent.slerp(np.zeros(8), a, 0.5), a / 2, atol=1e-7)


@pytest.mark.parametrize("mode", latent.PATH_MODES)
def test_interpolate_path_passes_through_keyframes(mode):
    keys = RNG.standard_normal((4, 6)).astype(np.float32)
    for frames in (4, 10, 13, 31):
        path = latent.interpolate_path(keys, frames, mode)
        assert path.shape == (frames, 6)
        pos = latent.keyframe_positions(4, frames)
        assert pos[0] == 0 and pos[-1] == frames - 1 and len(set(pos.tolist())) == 4
        np.testing.assert_array_equal(path[pos], keys)


def test_interpolate_path_linear_segments_are_straight():
    keys = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 3.0]], np.float32)
    path = latent.interpolate_path(keys, 7, "linear")
    np.testing.assert_allclose(path, [[0, 0], [1, 0], [2, 0], [3, 0], [3, 1], [3, 2], [3, 3]], atol=1e-6)


def test_interpolate_path_rejects_bad_input():
    with pytest.raises(ValueError):
        latent.interpolate_path(np.zeros((1, 3)), 5)
    with pytest.raises(ValueError):
        latent.interpolate_path(np.zeros((3, 3)), 2)
    with pytest.raises(ValueError):
        latent.interpolate_path(np.zeros((2, 3)), 5, "cubic")


# --- PCA ----------------------------------------------------------------------------------------
def test_principal_directions_recovers_axes():
    d = 5
    rotation, _ = np.linalg.qr(RNG.standard_normal((d, d)))
    scales = np.array([5.0, 3.0, 1.0, 0.5, 0.1])
    x = (RNG.standard_normal((4000, d)) * scales) @ rotation.T + 7.0
    mean, comps, var = latent.principal_directions(x)
    np.testing.assert_allclose(mean, 7.0, atol=0.3)
    assert comps.shape == (d, d)
    np.testing.assert_allclose(comps @ comps.T, np.eye(d), atol=1e-5)
    assert np.all(np.diff(var) <= 0)
    np.testing.assert_allclose(var, scales**2, rtol=0.1)
    for k in range(3):  # the well-separated axes, up to sign
        assert abs(comps[k] @ rotation[:, k]) > 0.99


def test_principal_directions_complete_basis_when_few_points():
    mean, comps, var = latent.principal_directions(RNG.standard_normal((3, 6)))
    np.testing.assert_allclose(comps @ comps.T, np.eye(6), atol=1e-5)
    assert var[2:].max() < 1e-9


# --- planes -------------------------------------------------------------------------------------
def test_plane_grid_layout_and_round_trip():
    center = RNG.standard_normal(7)
    u, v = RNG.standard_normal(7), RNG.standard_normal(7)  # not orthogonal on purpose
    grid = latent.plane_grid(center, u, v, span=2.0, resolution=5)
    assert grid.shape == (25, 7)
    axis = np.linspace(-2, 2, 5)
    np.testing.assert_allclose(grid[0], center - 2 * u + 2 * v, atol=1e-5)  # top-left: a=-span, b=+span
    np.testing.assert_allclose(grid[4], center + 2 * u + 2 * v, atol=1e-5)  # top-right
    np.testing.assert_allclose(grid[24], center + 2 * u - 2 * v, atol=1e-5)  # bottom-right
    coords = latent.plane_coordinates(grid, center, u, v)
    expected = np.stack([np.tile(axis, 5), np.repeat(axis[::-1], 5)], axis=1)
    np.testing.assert_allclose(coords, expected, atol=1e-4)


def test_plane_origin_keeps_z_and_raw_dims():
    z = RNG.standard_normal(4).astype(np.float32)
    e = np.eye(4, dtype=np.float32)
    c = latent.plane_origin(z, np.zeros(4), e[1], e[3])
    np.testing.assert_allclose(c, [z[0], 0, z[2], 0])
    ab = latent.plane_coordinates(z, c, e[1], e[3])[0]
    np.testing.assert_allclose(ab, [z[1], z[3]], atol=1e-6)


def test_plane_through_three_points():
    p = RNG.standard_normal((3, 9))
    center, u, v, coords = latent.plane_through(*p)
    assert abs(u @ v) < 1e-6 and np.linalg.norm(u) == pytest.approx(1, abs=1e-6)
    np.testing.assert_allclose(center, p.mean(0), atol=1e-6)
    np.testing.assert_allclose(center + coords[:, :1] * u + coords[:, 1:] * v, p, atol=1e-5)
    np.testing.assert_allclose(latent.plane_coordinates(p, center, u, v), coords, atol=1e-5)
    assert coords[2, 1] > 0
    with pytest.raises(ValueError):
        latent.plane_through(p[0], p[1], 2 * p[1] - p[0])


# --- vectors ------------------------------------------------------------------------------------
def test_attribute_vector_binary_equals_hand_difference():
    z = RNG.standard_normal((10, 3))
    labels = np.array([1, 0, 1, 1, 0, 0, 0, 1, 0, 0], np.float32)
    expected = z[labels == 1].mean(0) - z[labels == 0].mean(0)
    np.testing.assert_allclose(latent.attribute_vector(z, labels), expected, atol=1e-6)
    np.testing.assert_allclose(latent.attribute_vector(z, labels * 2 - 1), expected, atol=1e-6)  # -1/+1
    np.testing.assert_allclose(latent.attribute_vector(z, labels.astype(bool)), expected, atol=1e-6)


def test_attribute_vector_continuous_splits_at_median():
    z = RNG.standard_normal((9, 2))
    y = np.array([0.1, 0.9, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6])
    high = y > 0.5
    np.testing.assert_allclose(latent.attribute_vector(z, y), z[high].mean(0) - z[~high].mean(0), atol=1e-6)
    with pytest.raises(ValueError):
        latent.attribute_vector(z, np.ones(9))


def test_exemplar_arithmetic_and_apply_vector():
    a, b, c = RNG.standard_normal((3, 4)), RNG.standard_normal((2, 4)), RNG.standard_normal((1, 4))
    np.testing.assert_allclose(latent.exemplar_arithmetic(a, b, c), a.mean(0) - b.mean(0) + c[0], atol=1e-6)
    with pytest.raises(ValueError):
        latent.exemplar_arithmetic(a, np.zeros((0, 4)), c)
    z, v = RNG.standard_normal(4), RNG.standard_normal(4)
    np.testing.assert_allclose(latent.apply_vector(z, v, -1.5), z - 1.5 * v, atol=1e-6)


# --- with a model -------------------------------------------------------------------------------
def test_encode_dataset_gives_encoder_means_log_variances_and_labels():
    spec = DataSpec("shapes", image_size=28, channels=1)
    ds = load_dataset(spec, train=False)
    model = create_model("vae", {"latent_dim": 3}, seed=0).eval()
    enc = latent.encode_dataset(model, ds, n=50, batch=16, seed=3)
    z, y, idx = enc.latents, enc.labels, enc.indices
    assert z.shape == enc.logvars.shape == (50, 3) and y.shape == (50, len(ds.label_names)) and idx.shape == (50,)
    assert z.dtype == enc.logvars.dtype == y.dtype == np.float32
    assert len(set(idx.tolist())) == 50 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, latent.sample_indices(len(ds), 50, seed=3))
    images, labels = ds.get_batch(idx[:5])
    with torch.no_grad():
        mu, logvar = model.encode(images)
    np.testing.assert_allclose(z[:5], mu.numpy(), atol=1e-5)
    np.testing.assert_allclose(enc.logvars[:5], logvar.numpy(), atol=1e-5)
    np.testing.assert_array_equal(y[:5], labels.numpy())
    again = latent.encode_dataset(model, ds, n=50, batch=50, seed=3)
    np.testing.assert_array_equal(idx, again.indices)
    np.testing.assert_allclose(again.latents, z, atol=1e-5)  # batching does not change the rows
    stopped = latent.encode_dataset(model, ds, n=50, batch=16, seed=3, should_stop=lambda: True)
    assert stopped.latents.shape == stopped.logvars.shape == (0, 3) and stopped.indices.shape == (0,)
    assert stopped.labels.shape == (0, len(ds.label_names))


def test_encode_indices_stops_between_batches_and_reports_progress():
    ds = load_dataset(DataSpec("shapes", image_size=28, channels=1), train=False)
    model = create_model("vae", {"latent_dim": 3}, seed=0).eval()
    seen: list[tuple[int, int]] = []
    enc = latent.encode_indices(
        model,
        ds,
        np.arange(10),
        batch=4,
        should_stop=lambda: len(seen) == 2,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(4, 10), (8, 10)]
    np.testing.assert_array_equal(enc.indices, np.arange(8))  # cut to the rows done
    assert enc.latents.shape == (8, 3)
    mu, logvar = latent.encode_images(model, ds.get_batch(np.arange(8))[0])
    np.testing.assert_allclose(enc.latents, mu, atol=1e-5)
    np.testing.assert_allclose(enc.logvars, logvar, atol=1e-5)


def test_sample_indices_is_seeded_sorted_and_capped():
    a, b = latent.sample_indices(100, 10, seed=1), latent.sample_indices(100, 10, seed=1)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int64 and np.all(np.diff(a) > 0) and len(a) == 10
    assert not np.array_equal(a, latent.sample_indices(100, 10, seed=2))
    np.testing.assert_array_equal(latent.sample_indices(5, 10), np.arange(5))


def test_encode_dataset_refuses_a_gan_and_decode_matches_model():
    gan = create_model("gan", {"latent_dim": 4, "g_width": 8, "d_width": 8}, seed=0).eval()
    with pytest.raises(ValueError, match="encoder"):
        latent.encode_dataset(gan, load_dataset(DataSpec("shapes", image_size=28, channels=1)), n=4)
    with pytest.raises(ValueError, match="encoder"):
        latent.encode_images(gan, torch.zeros(1, 1, 28, 28))
    z = RNG.standard_normal((5, 4)).astype(np.float32)
    images = latent.decode_latents(gan, z, batch=2)
    assert images.shape == (5, 28, 28, 1)
    with torch.no_grad():
        expected = gan.decode(torch.from_numpy(z)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(images, expected, atol=1e-5)
    assert images.dtype == np.float32 and images.min() >= 0 and images.max() <= 1
    np.testing.assert_array_equal(latent.decode_latents(gan, z[0]), images[:1])  # one (D,) latent: a batch of 1
    assert latent.decode_latents(gan, z, should_stop=lambda: True).shape == (0, 28, 28, 1)


def test_encode_labelled_reads_the_labels_as_attributes_and_colourings():
    shapes_set = load_dataset(DataSpec("shapes", image_size=28, channels=1), train=False)
    model = create_model("vae", {"latent_dim": 3}, seed=0).eval()
    data = encode_labelled(model, shapes_set, n=40, seed=2)
    plain = latent.encode_dataset(model, shapes_set, 40, seed=2)
    np.testing.assert_array_equal(data.indices, plain.indices)
    np.testing.assert_allclose(data.latents, plain.latents, atol=1e-6)
    assert data.labels.shape == (40, 6) and data.label_names == list(shapes_set.label_names)
    attributes = data.attributes()
    assert [a.name for a in attributes[:4]] == [
        "shape = square",
        "shape = circle",
        "shape = triangle",
        "color (high vs low)",
    ]
    circle = attributes[1]
    np.testing.assert_array_equal(circle.mask(data.labels), data.labels[:, 0] == 1)
    size = next(a for a in attributes if a.name.startswith("size"))
    np.testing.assert_array_equal(size.mask(data.labels), latent.binarize_labels(data.labels[:, 2]))
    colourings = data.colourings()
    assert colourings[0].name == "shape" and colourings[0].class_names == ("square", "circle", "triangle")
    np.testing.assert_array_equal(colourings[0].values(data.labels), np.round(data.labels[:, 0]).astype(np.int64))
    np.testing.assert_array_equal(data.image(3), shapes_set.get_batch([int(data.indices[3])])[0][0].permute(1, 2, 0))

    faces = load_dataset(DataSpec("faces", image_size=32, channels=3), train=False)
    faces_vae = create_model(
        "vae", {"image_size": 32, "channels": 3, "latent_dim": 3, "likelihood": "gaussian"}, seed=0
    ).eval()
    face_data = encode_labelled(faces_vae, faces, n=20)
    assert [c.name for c in face_data.colourings()[:2]] == ["smiling", "glasses"]  # binary ones first
    assert face_data.colourings()[0].class_names == ("no smiling", "smiling")
    assert [a.name for a in face_data.attributes()[:2]] == ["smiling", "glasses"]
