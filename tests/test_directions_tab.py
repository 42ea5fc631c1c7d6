"""The Directions tab on the bundled models, driven through its real widgets (pytest-qt): discovery,
boundaries from a classifier, the dataset and the user's tags, conditional edits, the explanation
strip and scores, applying with undo, saving as a vector, sessions, and models it cannot fully serve."""

from __future__ import annotations

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402

from engines import directions as dirs  # noqa: E402
from explorer.panels.directions import DirectionsPanel  # noqa: E402
from explorer.state import ExplorerState  # noqa: E402

BUNDLED = Path(__file__).resolve().parents[1] / "checkpoints"
WAIT = 30_000


def open_panel(qtbot, name: str, seed: int = 3) -> DirectionsPanel:
    state = ExplorerState()
    state.open_checkpoint(BUNDLED / f"{name}.safetensors", device="cpu")
    state.randomize(seed, temperature=0.8)
    panel = DirectionsPanel(state)
    qtbot.addWidget(panel)
    panel.resize(1200, 800)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def idle(qtbot, panel: DirectionsPanel) -> None:
    qtbot.waitUntil(lambda: not panel.busy(), timeout=WAIT)


def click(qtbot, button) -> None:
    assert button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def group_texts(panel: DirectionsPanel, title: str) -> list[str]:
    group = next(g for t, g in panel._groups.items() if t == title)
    return [group.child(i).text(0) for i in range(group.childCount())]


def test_sefa_and_the_jacobian_basis_are_listed_with_their_values(qtbot):
    panel = open_panel(qtbot, "vae-faces")
    click(qtbot, panel.sefa_button)
    idle(qtbot, panel)
    sefa = [d for d in panel.directions.values() if d.method == "sefa"]
    assert [d.name for d in sefa] == [f"SeFa {i}" for i in range(1, 11)]
    assert [d.value for d in sefa] == sorted((d.value for d in sefa), reverse=True)
    assert group_texts(panel, "Discovered")[0].startswith("SeFa 1 · λ 12.6")

    click(qtbot, panel.jacobian_button)
    idle(qtbot, panel)
    values = panel.singular_values.copy()
    assert len(values) == 10 and np.all(values > 0) and np.all(np.diff(values) <= 0)
    assert f"σ {values[0]:.3g}" in panel.discover_note.text()
    assert any(t.startswith(f"Jacobian 1 · σ {values[0]:.3g}") for t in group_texts(panel, "Discovered"))
    expected = dirs.jacobian_basis(panel.state.model, panel.state.z, 10)
    assert [d.value for d in expected] == pytest.approx(list(values))

    panel.follow_check.setChecked(True)  # follows z: a new z gives a new basis once it rests
    idle(qtbot, panel)
    panel.state.randomize(11)
    qtbot.waitUntil(lambda: not np.allclose(panel.singular_values, values), timeout=WAIT)
    idle(qtbot, panel)
    expected = dirs.jacobian_basis(panel.state.model, panel.state.z, 10)
    assert list(panel.singular_values) == pytest.approx([d.value for d in expected])


def test_tagging_samples_fits_a_direction_that_is_applied_and_undone(qtbot):
    panel = open_panel(qtbot, "vae-faces")
    panel.pages.setCurrentIndex(2)
    gallery = panel.gallery
    qtbot.waitUntil(lambda: gallery.count() == 48, timeout=WAIT)
    idle(qtbot, panel)
    # The user's concept here: "the first latent coordinate is positive"; 30 samples, real clicks.
    truth = gallery.latents[:, 0] > 0
    for row in range(30):
        item = gallery.item(row)
        gallery.scrollToItem(item)
        button = Qt.MouseButton.LeftButton if truth[row] else Qt.MouseButton.RightButton
        qtbot.mouseClick(gallery.viewport(), button, pos=gallery.visualItemRect(item).center())
    assert gallery.tags == {row: bool(truth[row]) for row in range(30)}
    assert gallery.item(0).text() == ("yes" if truth[0] else "no") and gallery.item(40).text() == ""
    yes = int(truth[:30].sum())
    assert panel.tag_counts.text() == f"{yes} yes, {30 - yes} no"
    gallery.toggle(0, bool(truth[0]))  # the same click again clears the tag
    assert 0 not in gallery.tags and gallery.item(0).text() == ""
    gallery.toggle(0, bool(truth[0]))

    panel.tag_name_edit.setText("first axis")
    click(qtbot, panel.fit_tags_button)
    qtbot.waitUntil(lambda: "first axis" in panel.directions, timeout=WAIT)
    found = panel.directions["first axis"]
    assert found.method == "tagged" and panel.selected == "first axis"
    assert found.vector[0] > 0.6  # 30 tags recover the concept's axis
    assert "held-out accuracy" in panel.tags_status.text()
    assert group_texts(panel, "Tagged")[0].startswith("first axis · acc")

    panel.pages.setCurrentIndex(0)
    z0 = panel.state.z.copy()
    panel.step_spin.setValue(1.5)
    click(qtbot, panel.apply_button)
    unit = found.vector / np.linalg.norm(found.vector)
    np.testing.assert_allclose(panel.state.z, z0 + 1.5 * unit, atol=1e-5)
    panel.strength_slider.setValue(-100)  # the slider moves from there: one sigma back
    np.testing.assert_allclose(panel.state.z, z0 + 0.5 * unit, atol=1e-5)
    click(qtbot, panel.undo_button)
    click(qtbot, panel.undo_button)
    np.testing.assert_array_equal(panel.state.z, z0)
    idle(qtbot, panel)


def test_classifier_boundaries_conditional_edit_strip_and_saving(qtbot):
    panel = open_panel(qtbot, "vae-faces")
    assert panel.source_combo.currentData() == "classifier"
    click(qtbot, panel.fit_button)
    idle(qtbot, panel)
    names = ["smiling", "glasses", "hair_color", "face_width", "skin_tone", "eye_size"]
    assert list(panel.boundaries) == names
    assert panel.boundaries["glasses"].accuracy > 0.8
    assert [t.split(" · ")[0] for t in group_texts(panel, "Boundaries")] == names

    # A discovered direction that lines up with a boundary is named after it.
    click(qtbot, panel.sefa_button)
    idle(qtbot, panel)
    glasses = panel.boundaries["glasses"].normal
    cosines = {n: float(d.vector @ glasses) for n, d in panel.directions.items() if d.method == "sefa"}
    best = max(cosines, key=lambda n: abs(cosines[n]))
    assert abs(cosines[best]) > 0.5
    assert f"{best} · λ" in panel.item(best).text(0) and f"≈ glasses (cos {cosines[best]:+.2f})" in panel.label(best)
    unmatched = [n for n in cosines if panel.match(n) is None]
    assert unmatched and all("≈" not in panel.item(n).text(0) for n in unmatched)

    # Change smiling, keep glasses.
    panel.pages.setCurrentIndex(1)
    panel.change_combo.setCurrentText("smiling")
    panel.keep_list.findItems("glasses", Qt.MatchFlag.MatchExactly)[0].setCheckState(Qt.CheckState.Checked)
    assert panel.kept() == ["glasses"]
    click(qtbot, panel.conditional_button)
    name = "smiling | keep glasses"
    assert panel.selected == name and group_texts(panel, "Conditional") == [panel.label(name)]
    vector = panel.directions[name].vector
    assert abs(float(vector @ glasses)) < 1e-5
    assert float(vector @ panel.boundaries["smiling"].normal) > 0.5

    # Its explanation: 7 images that differ, and the classifier's smiling reading rising along it.
    panel.pages.setCurrentIndex(0)
    qtbot.waitUntil(lambda: len(panel.strip_images) == 7, timeout=WAIT)
    idle(qtbot, panel)
    strip = panel.strip_images
    assert all(not np.allclose(strip[i], strip[j], atol=1e-3) for i in range(7) for j in range(i + 1, 7))
    assert all(not view.pixmap().isNull() for view in panel.strip_views)
    assert set(panel.scores) == set(names) and set(panel.curves) == set(names)
    assert panel.scores["smiling"][-1] > panel.scores["smiling"][0] + 0.5
    x, y = panel.curves["smiling"].getData()
    np.testing.assert_allclose(y, panel.scores["smiling"])

    assert panel.vector_name_edit.text() == "smiling_keep_glasses"  # the default name of the vector
    panel.vector_name_edit.setText("smile, glasses kept")
    panel.scale_spin.setValue(2.0)
    click(qtbot, panel.save_button)
    saved = panel.state.vectors["smile, glasses kept"]
    np.testing.assert_allclose(saved, 2.0 * vector / np.linalg.norm(vector), atol=1e-6)


def test_dataset_label_boundaries_and_pca_of_encoded_images(qtbot):
    panel = open_panel(qtbot, "vae-faces")
    panel.source_combo.setCurrentIndex(panel.source_combo.findData("dataset"))
    click(qtbot, panel.fit_button)
    qtbot.waitUntil(lambda: "boundaries from the labels of" in panel.boundary_status.text(), timeout=WAIT)
    assert "smiling" in panel.boundaries and panel.boundaries["smiling"].n == 1000
    click(qtbot, panel.pca_button)
    qtbot.waitUntil(lambda: any(d.method == "pca" for d in panel.directions.values()), timeout=WAIT)
    idle(qtbot, panel)
    expected = dirs.pca_directions(panel.encoded.data.latents, 10)
    found = [d for d in panel.directions.values() if d.method == "pca"]
    assert [d.value for d in found] == pytest.approx([d.value for d in expected])
    assert "encoded dataset" in panel.discover_note.text()


def test_mnist_gets_one_boundary_per_digit_and_ten_score_curves(qtbot):
    panel = open_panel(qtbot, "dcgan-mnist")
    assert panel.source_combo.count() == 1  # a GAN: no encoder, so only the classifier labels
    click(qtbot, panel.fit_button)
    idle(qtbot, panel)
    assert len(panel.boundaries) == 10
    panel.select(next(iter(panel.boundaries)))
    qtbot.waitUntil(lambda: len(panel.curves) == 10, timeout=WAIT)
    idle(qtbot, panel)
    total = sum(panel.scores.values())
    np.testing.assert_allclose(total, 1.0, atol=1e-4)  # class probabilities at every sigma


def test_the_directions_survive_a_session_round_trip(qtbot):
    panel = open_panel(qtbot, "vae-faces")
    click(qtbot, panel.fit_button)
    click(qtbot, panel.sefa_button)
    idle(qtbot, panel)
    panel.select("SeFa 3")
    data = json.loads(json.dumps(panel.session_data()))

    other = open_panel(qtbot, "vae-faces", seed=5)
    other.load_session_data(data)
    assert list(other.directions) == list(panel.directions) and other.selected == "SeFa 3"
    for name, d in panel.directions.items():
        assert other.directions[name].method == d.method
        np.testing.assert_array_equal(other.directions[name].vector, d.vector)
        assert other.label(name) == panel.label(name)  # boundaries came back too: the same matches
    assert other.boundaries["glasses"].offset == pytest.approx(panel.boundaries["glasses"].offset)
    idle(qtbot, other)


def test_a_model_without_readable_weights_offers_the_jacobian_and_a_pixelcnn_gets_the_gate(qtbot, tmp_path):
    import onnx

    from tests.onnx_helpers import linear_decoder

    onnx.save(linear_decoder(latent=3, side=4), tmp_path / "linear.onnx")
    state = ExplorerState()
    state.open_checkpoint(tmp_path / "linear.onnx")
    panel = DirectionsPanel(state)
    qtbot.addWidget(panel)
    panel.resize(1000, 700)
    panel.show()
    assert panel.gate.currentIndex() == 1
    assert not panel.sefa_button.isEnabled() and "use the Jacobian basis instead" in panel.discover_note.text()
    assert not panel.fit_button.isEnabled() and "Tag samples instead" in panel.boundary_status.text()
    click(qtbot, panel.jacobian_button)
    idle(qtbot, panel)
    assert len(panel.singular_values) == 3
    panel.select("Jacobian 1")
    qtbot.waitUntil(lambda: len(panel.strip_images) == 7, timeout=WAIT)
    idle(qtbot, panel)
    assert "No attribute scores" in panel.scores_note.text() and not panel.curves

    state.open_checkpoint(BUNDLED / "pixelcnn-mnist.safetensors")
    assert panel.gate.currentIndex() == 0 and "latent" in panel.gate.message.text()
    assert panel.directions == {}


def test_a_conditional_shift_turns_glasses_on_for_this_face_and_keeps_the_rest(qtbot):
    from engines.checkpoint import load_checkpoint
    from engines.metrics import _edit_outcome, decode_to_labels

    panel = open_panel(qtbot, "vae-faces", seed=5)
    panel.source_combo.setCurrentIndex(panel.source_combo.findData("dataset"))
    click(qtbot, panel.fit_button)
    qtbot.waitUntil(lambda: panel.labelled is not None, timeout=WAIT * 4)
    idle(qtbot, panel)
    clf = load_checkpoint(BUNDLED / "attributes-faces.safetensors").model.eval()
    names = list(clf.label_kinds)
    # a face without glasses, from the labelled (encoded) ones, so the edit has something to do
    rows = np.flatnonzero(panel.labelled.labels[:, panel.labelled.names.index("glasses")] < 0.5)
    z0 = panel.labelled.latents[rows[0]].astype(np.float32)
    panel.state.set_z(z0)
    panel.pages.setCurrentIndex(1)
    panel.change_combo.setCurrentText("glasses")
    click(qtbot, panel.shift_button)
    qtbot.waitUntil(lambda: panel.shift is not None, timeout=WAIT)
    # the same shift computed independently: the classifier's reading of this face, the labelled set
    here = dirs.classifier_columns(decode_to_labels(panel.state.model, clf, z0[None]), clf, panel.labelled.names)
    expected = dirs.ConditionalShift(
        panel.labelled.latents, panel.labelled.labels, panel.labelled.names.index("glasses")
    ).shift(here)[0]
    np.testing.assert_allclose(panel.shift[1], expected, rtol=1e-5, atol=1e-6)
    name = "glasses | shift for this face"
    assert panel.selected == name and panel.step_spin.value() == pytest.approx(np.linalg.norm(expected), abs=0.01)
    panel.pages.setCurrentIndex(0)
    click(qtbot, panel.apply_button)  # Step by the shift's length: z + the whole shift
    np.testing.assert_allclose(panel.state.z, z0 + expected, atol=0.01)
    before = decode_to_labels(panel.state.model, clf, z0[None])
    after = decode_to_labels(panel.state.model, clf, panel.state.z[None])
    outcome = _edit_outcome(clf, "glasses", before, after, 0.15)
    assert outcome["success"][0], {k: (float(before[0, i]), float(after[0, i])) for i, k in enumerate(names)}
