"""Sessions load all or nothing: every check comes before the model, z, bookmarks or vectors change."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import json  # noqa: E402
import shutil  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from explorer.session import FORMAT, Session, SessionError  # noqa: E402


def snapshot(window) -> tuple:
    state = window.state
    return (
        state.checkpoint_path,
        state.model,
        state.z.tolist(),
        state.seed,
        [(m.name, m.z.tolist()) for m in state.bookmarks],
        {k: v.tolist() for k, v in state.vectors.items()},
        window.bookmarks.list.count(),
    )


@pytest.fixture
def explored(make_window, vae_checkpoint, tmp_path):
    """A window on a copy of the 4-D VAE with a z, a seed, two bookmarks and a vector set."""
    copy = tmp_path / "vae4.safetensors"
    shutil.copy(vae_checkpoint, copy)
    window = make_window(copy)
    state = window.state
    state.randomize(5)
    state.add_bookmark("a")
    state.randomize(6)
    state.add_bookmark("b")
    state.set_vector("v", np.arange(4, dtype=np.float32))
    return window


def write(path, **fields):
    path.write_text(json.dumps({"format": FORMAT, **fields}))
    return path


def assert_refused(window, path, *words):
    before = snapshot(window)
    assert window.load_session(path) is False
    text = window.banner.text()
    assert text.startswith(f"Cannot load {path.name}: ") and "\n" not in text and "Traceback" not in text
    for word in words:
        assert word in text, text
    window.message_box.close()
    after = snapshot(window)
    assert after[0] == before[0] and after[1] is before[1]  # the same model object: nothing was switched
    assert after[2:] == before[2:]


def test_a_corrupted_session_file_changes_nothing(explored, tmp_path):
    good = tmp_path / "good.json"
    assert explored.save_session(good)
    text = good.read_text()
    (tmp_path / "cut.json").write_text(text[: len(text) // 2])
    assert_refused(explored, tmp_path / "cut.json", "cannot read")
    (tmp_path / "binary.json").write_bytes(b"\x00\xff\xfe garbage")
    assert_refused(explored, tmp_path / "binary.json")


def test_a_session_of_another_checkpoint_with_a_z_of_the_wrong_size_keeps_the_open_model(
    explored, gan_checkpoint, tmp_path
):
    # The case from issue 17: the session names the 16-D GAN but holds a 4-D z.
    path = write(tmp_path / "s.json", checkpoint=str(gan_checkpoint), z=[0.1, 0.2, 0.3, 0.4])
    assert_refused(explored, path, "z has 4 values", "16")


def test_a_wrong_size_bookmark_or_vector_changes_nothing(explored, tmp_path):
    ckpt = str(explored.state.checkpoint_path)
    path = write(
        tmp_path / "mark.json",
        checkpoint=ckpt,
        z=[0.0] * 4,
        bookmarks=[{"name": "ok", "z": [0.0] * 4}, {"name": "short", "z": [1.0, 2.0]}],
    )
    assert_refused(explored, path, "bookmark 'short' has 2 values", "4")
    path = write(tmp_path / "vector.json", checkpoint=ckpt, z=[0.0] * 4, vectors={"long": [0.5] * 9})
    assert_refused(explored, path, "vector 'long' has 9 values")


def test_a_session_naming_a_missing_or_corrupt_checkpoint_changes_nothing(explored, tmp_path):
    missing = write(
        tmp_path / "missing.json", checkpoint=str(tmp_path / "gone.safetensors"), sha256="0" * 64, z=[0.0] * 4
    )
    assert_refused(explored, missing, "gone.safetensors", "missing")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}" + bytes(100))
    path = write(tmp_path / "corrupt.json", checkpoint=str(corrupt), z=[0.0] * 4)
    assert_refused(explored, path, "corrupt.safetensors cannot be opened")


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"z": [0.0, 0.0, "1", 0.0]}, ["z must hold finite numbers only", "'1'"]),
        ({"z": [0.0, 0.0, True, 0.0]}, ["z must hold finite numbers only"]),
        ({"z": {"0": 1.0}}, ["z must be a list of numbers"]),
        ({"z": [0.0] * 4, "seed": "7"}, ["seed must be a whole number"]),
        ({"z": [0.0] * 4, "seed": -1}, ["seed must be a whole number"]),
        ({"z": [0.0] * 4, "temperature": 0}, ["temperature must be a number"]),
        ({"z": [0.0] * 4, "bookmarks": {"a": [0.0] * 4}}, ["bookmarks must be a list"]),
        ({"z": [0.0] * 4, "bookmarks": [{"name": 3, "z": [0.0] * 4}]}, ["bookmarks[0] must be an object"]),
        ({"z": [0.0] * 4, "vectors": [[0.0] * 4]}, ["vectors must be an object"]),
        ({"z": [0.0] * 4, "checkpoint": 12}, ["checkpoint must be text"]),
        ({"seed": 1}, ["has no z"]),
    ],
)
def test_ill_typed_fields_are_refused_with_the_field_named(explored, tmp_path, fields, words):
    fields.setdefault("checkpoint", str(explored.state.checkpoint_path))
    assert_refused(explored, write(tmp_path / "s.json", **fields), *words)


def test_non_finite_numbers_are_refused(explored, tmp_path):
    path = tmp_path / "nan.json"  # Python's json writes and reads NaN / Infinity
    path.write_text(
        json.dumps(
            {"format": FORMAT, "checkpoint": str(explored.state.checkpoint_path), "z": [0.0, float("nan"), 0.0, 0.0]}
        )
    )
    assert_refused(explored, path, "finite numbers only", "nan")
    path.write_text(json.dumps({"format": FORMAT, "z": [0.0] * 4, "bookmarks": [{"name": "x", "z": [1e39] * 4}]}))
    assert_refused(explored, path, "too large")


def test_a_valid_session_of_another_checkpoint_switches_the_model_and_applies_everything(
    explored, gan_checkpoint, tmp_path
):
    z = np.linspace(-1, 1, 16).tolist()
    path = write(
        tmp_path / "gan.json",
        checkpoint=str(gan_checkpoint),
        z=z,
        seed=11,
        bookmarks=[{"name": "g", "z": [0.5] * 16}],
        vectors={},
    )
    assert explored.load_session(path)
    state = explored.state
    assert state.checkpoint_path == gan_checkpoint and state.kind == "gan"
    np.testing.assert_allclose(state.z, z, rtol=1e-6)
    assert state.seed == 11 and [m.name for m in state.bookmarks] == ["g"] and state.vectors == {}
    assert explored.bookmarks.list.count() == 1


def test_a_moved_checkpoint_with_the_same_hash_is_the_open_one(explored, tmp_path):
    state = explored.state
    state.set_z(np.array([0.25, 0, 0, 0], dtype=np.float32))
    assert explored.save_session(tmp_path / "s.json")
    doc = json.loads((tmp_path / "s.json").read_text())
    doc["checkpoint"] = str(tmp_path / "elsewhere" / "vae4.safetensors")  # saved on another machine
    (tmp_path / "s.json").write_text(json.dumps(doc))
    state.reset()
    assert explored.load_session(tmp_path / "s.json")
    assert state.z[0] == 0.25 and explored.message_box is None


def test_session_parsing_without_qt_names_the_field():
    with pytest.raises(SessionError, match="bookmark 'x' must hold finite numbers only"):
        Session.from_json({"format": FORMAT, "z": [0.0], "bookmarks": [{"name": "x", "z": [None]}]})
    session = Session.from_json({"format": FORMAT, "z": [1, 2.5], "seed": 3})
    assert session.z.dtype == np.float32 and session.z.tolist() == [1.0, 2.5] and session.seed == 3
    with pytest.raises(SessionError, match="z has 2 values; the model's latent has 3"):
        session.check_fits(3)
