"""engines.replay and engines.export without Qt: a PixelCNN's steps in chunks, recordings, completion,
and writing a latent path to disk."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from engines import latent
from engines.export import export_latents, sidecar_paths
from engines.images import unit_to_uint8
from engines.replay import Recording, completion, image_levels, sample_chunks
from engines.training import create_model
from tests.helpers import TINY, shapes


@pytest.fixture(scope="module")
def pixelcnn():
    return create_model("pixelcnn", {**TINY["pixelcnn"], "levels": 4}, seed=0).eval()


def _record(model, chunks) -> Recording:
    c = model.config
    recording = Recording(c.channels, c.image_size, c.levels)
    for chunk in chunks:
        recording.append(chunk)
    return recording


def test_chunks_hold_every_step_of_the_models_own_sampler_in_order(pixelcnn) -> None:
    steps = list(pixelcnn.sample_steps(1, temperature=0.8, generator=torch.Generator().manual_seed(4)))
    chunks = list(sample_chunks(pixelcnn, 0.8, seed=4, every_s=0.0))  # a chunk per step
    assert len(chunks) == len(steps) == 28 * 28
    recording = _record(pixelcnn, chunks)
    np.testing.assert_array_equal(recording.positions, [(s.channel, s.row, s.col) for s in steps])
    np.testing.assert_array_equal(recording.values, [int(s.value[0]) for s in steps])
    np.testing.assert_array_equal(recording.probs, np.stack([s.probs[0] for s in steps]).astype(np.float32))
    # the image a recording shows is the model's own sample for that seed, to the bit
    expected = pixelcnn.sample(1, generator=torch.Generator().manual_seed(4), temperature=0.8)[0].permute(1, 2, 0)
    np.testing.assert_array_equal(recording.image(), expected.numpy())
    assert recording.image().dtype == np.float32
    # one chunk when nothing asks for more (the test runs in well under an hour)
    assert len(list(sample_chunks(pixelcnn, 0.8, seed=4, every_s=3600.0))) == 1


def test_a_stop_ends_sampling_without_the_unfinished_chunk(pixelcnn) -> None:
    asked = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 10

    chunks = list(sample_chunks(pixelcnn, 1.0, seed=0, should_stop=should_stop, every_s=3600.0))
    assert chunks == [] and len(asked) == 11  # checked before every step; the ten drawn are dropped
    partial = _record(pixelcnn, sample_chunks(pixelcnn, 1.0, seed=0, should_stop=lambda: False, every_s=0.0))
    assert len(partial) == partial.expected == 784


def test_completion_keeps_the_given_rows_and_draws_the_rest(pixelcnn) -> None:
    data = shapes(8, train=False)
    levels = image_levels(pixelcnn, data, 3)
    np.testing.assert_array_equal(levels, pixelcnn.quantize(data[3][0]).numpy())
    given = completion(levels, rows=10, index=3)
    assert given.label == "image #3, rows 0-9 given" and given.mask[:, :10].all() and not given.mask[:, 10:].any()
    assert completion(levels, rows=0, index=3).label == "image #3, nothing given"
    recording = Recording(1, 28, 4, given)
    for chunk in sample_chunks(pixelcnn, 1.0, seed=1, given=given):
        recording.append(chunk)
    assert len(recording) == recording.expected == 18 * 28 and recording.positions[:, 1].min() == 10
    final, mask = recording.canvas(len(recording))
    assert mask.all()
    np.testing.assert_array_equal(final[:, :10], levels[:, :10])
    half, half_mask = recording.canvas(28)  # after one drawn row: the given rows and row 10
    assert half_mask[:, :11].all() and not half_mask[:, 11:].any()
    np.testing.assert_array_equal(recording.image(28)[11:], 0.0)  # unknown pixels show 0
    with pytest.raises(ValueError, match="out of range"):
        image_levels(pixelcnn, data, 8)


def test_export_writes_the_decoded_frames_and_their_latents(tmp_path) -> None:
    vae = create_model("vae", TINY["vae"], seed=0).eval()
    path = latent.interpolate_path(np.random.default_rng(0).standard_normal((2, 4)), 5)
    written = export_latents(vae, path, "png", tmp_path / "strip.png", {"mode": "linear"}, fps=4.0)
    npy, js = sidecar_paths(tmp_path / "strip.png")
    assert written == [tmp_path / "strip.png", npy, js]
    frames = unit_to_uint8(latent.decode_latents(vae, path))[..., 0]  # (5, 28, 28)
    with Image.open(tmp_path / "strip.png") as strip:
        pixels = np.asarray(strip)
    assert pixels.shape == (28, 5 * 28)
    np.testing.assert_array_equal(pixels, np.concatenate(list(frames), axis=1))
    np.testing.assert_array_equal(np.load(npy), path)
    meta = json.loads(js.read_text())
    assert meta["mode"] == "linear" and meta["frame_count"] == 5 and meta["fps"] == 4.0 and meta["format"] == "png"
    assert export_latents(vae, path, "gif", tmp_path / "no.gif", {}, should_stop=lambda: True) == []
    assert not (tmp_path / "no.gif").exists() and not sidecar_paths(tmp_path / "no.gif")[0].exists()


def test_unit_to_uint8_rounds_like_the_grids_and_never_raises() -> None:
    values = np.array([0.0, 0.5, 1.0, 1.5, -0.2, np.nan, np.inf, -np.inf, 127.4 / 255], np.float32)
    assert unit_to_uint8(values).tolist() == [0, 128, 255, 255, 0, 0, 255, 0, 127]
    already = np.array([3, 200], np.uint8)
    assert unit_to_uint8(already) is already
