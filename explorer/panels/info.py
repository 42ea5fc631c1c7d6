"""The Model panel: what the open checkpoint is, how it was trained, and how well it does."""

from __future__ import annotations

import html
import math
from typing import Any

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QTextBrowser, QVBoxLayout, QWidget
from superqt.utils import signals_blocked

from engines.checkpoint import Checkpoint
from engines.data.split import describe_record
from engines.foreign.onnx_model import RANGES, range_name

from ..state import ExplorerState

WARNING_BACKGROUND = "#7a2020"
MAX_NAMES = 6  # tensor names listed under the warning


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return html.escape(str(value))
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _losses(values: dict[str, Any]) -> str:
    return ", ".join(f"{html.escape(k)} {_number(v)}" for k, v in values.items()) or "—"


MAX_METRIC_ROWS = 60  # a file can hold any JSON: the table stays readable


def _metric_rows(metrics: dict[str, Any], group: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """One row per metric under a heading per group (eval › attribute_arithmetic › smiling), so that the
    names stay short and the values stay in view; long lists are shown by their length."""
    rows: list[tuple[str, str]] = []
    leaves = [(k, v) for k, v in metrics.items() if not isinstance(v, dict)]
    groups = [(k, v) for k, v in metrics.items() if isinstance(v, dict)]
    if group and leaves:
        rows.append(("", f"<i>{html.escape(' › '.join(group))}</i>"))
    for key, value in leaves:
        if isinstance(value, list):
            short = len(value) <= 4 and all(not isinstance(v, (dict, list)) for v in value)
            shown = ", ".join(_number(v) for v in value) if short else f"{len(value)} entries"
        else:
            shown = _number(value)
        rows.append((html.escape(str(key)), shown))
    for key, value in groups:
        rows += _metric_rows(value, (*group, str(key))) if value else [(html.escape(str(key)), "—")]
    if len(rows) > MAX_METRIC_ROWS:
        return rows[:MAX_METRIC_ROWS] + [("…", "more in the file")]
    return rows


def nonfinite_warning(ckpt: Checkpoint | None) -> str | None:
    """ "N of M weight tensors hold NaN/inf values: images will be wrong", or None when all are finite."""
    bad = list(ckpt.nonfinite) if ckpt is not None else []
    if not bad:
        return None
    total = sum(1 for t in ckpt.model.state_dict().values() if t.is_floating_point())
    return f"{len(bad)} of {max(total, len(bad))} weight tensors hold NaN/inf values: images will be wrong"


def describe(state: ExplorerState) -> str:
    """The panel's HTML for the open checkpoint."""
    ckpt = state.checkpoint
    if ckpt is None:
        return "<p>No model is open.</p><p>File &gt; Open a checkpoint or ONNX model (Ctrl+O).</p>"
    model = ckpt.model
    config = getattr(model, "config", None)  # a model from elsewhere (ONNX, a plugin) has none
    channels, height, width = model.image_shape
    rows: list[tuple[str, str]] = [
        ("File", html.escape(ckpt.path.name if ckpt.path else "—")),
        (
            "Kind",
            html.escape({"vae": "VAE", "gan": "GAN", "pixelcnn": "Gated PixelCNN"}.get(ckpt.kind, str(ckpt.kind))),
        ),
        (
            "Dataset",
            html.escape(str(ckpt.dataset.get("name", "unknown")))
            if ckpt.dataset
            else "none named" + (" (a sidecar can name one)" if ckpt.format == "onnx" else ""),
        ),
        ("Image", f"{height} × {width} × {channels}"),
    ]
    if state.latent_dim:
        rows.append(("Latent", f"{state.latent_dim} dimensions"))
    rows += [(html.escape(label), html.escape(text)) for label, text in getattr(model, "describe", lambda: [])()]
    if hasattr(config, "levels"):
        rows.append(("Levels", str(config.levels)))
    if hasattr(config, "loss"):
        rows.append(("Loss", html.escape(config.loss)))
    if getattr(config, "code_classes", 0):  # InfoGAN: which sliders pick the category
        k = config.code_classes
        rows.append(("Code", f"{k} categories, learned without labels: the largest of z[0]..z[{k - 1}] picks one"))
    if hasattr(config, "likelihood"):
        rows.append(("Likelihood", f"{html.escape(config.likelihood)}, β = {config.beta:g}"))
    params = getattr(model, "parameter_count", None)
    params = params if isinstance(params, int) else sum(p.numel() for p in model.parameters())
    rows.append(("Parameters", f"{params:,}"))
    if not ckpt.verified:
        rows.append(("Checksum", "none in the file (written before checksums): its weights are unchecked"))
    rows.append(("Device", html.escape(str(state.device))))

    train = ckpt.training or {}
    if train:
        rows.append(("", "<b>Training</b>"))
        if "step" in train:
            rows.append(("Steps", _number(int(train["step"]))))
        if "epoch" in train:
            rows.append(("Epochs", f"{float(train['epoch']):.2f}"))
        if "seconds" in train:
            rows.append(("Time", _duration(float(train["seconds"]))))
        if "device" in train:
            rows.append(("Trained on", html.escape(str(train["device"]))))
        history = train.get("history") or []
        if history:
            last = history[-1]
            rows.append((f"Epoch {last.get('epoch', len(history))} train", _losses(last.get("train", {}))))
            # Runs from before validation splits were judged on the test split each epoch: said as it was.
            split = "val" if "val" in last else "test"
            if last.get(split):
                rows.append((f"Epoch {last.get('epoch', len(history))} {split}", _losses(last[split])))
            rows.append(("Held-out figures", html.escape(describe_record(train.get("validation")))))
    elif ckpt.format == "safetensors":
        rows.append(("Training", "no record in the file"))
    if ckpt.metrics:
        rows.append(("", "<b>Metrics</b>"))
        rows += _metric_rows(ckpt.metrics)
    if ckpt.vectors:
        rows.append(("Vectors", html.escape(", ".join(sorted(ckpt.vectors)))))
    body = "".join(
        f"<tr><td width='42%' style='color:#888;padding-right:10px;vertical-align:top'>{k}</td><td>{v}</td></tr>"
        for k, v in rows
    )
    warning = nonfinite_warning(ckpt)
    head = ""
    if warning:
        names = ", ".join(ckpt.nonfinite[:MAX_NAMES]) + (", …" if len(ckpt.nonfinite) > MAX_NAMES else "")
        head = (
            f"<table width='100%' cellpadding='6' style='background:{WARNING_BACKGROUND}'><tr><td style='color:white'>"
            f"<b>⚠ {html.escape(warning)}.</b><br><small>{html.escape(names)}</small></td></tr></table>"
        )
    return f"{head}<table cellspacing='2'>{body}</table>"


class InfoPanel(QWidget):
    """The model's description, and for an ONNX model the range its images are in (a switch: the range a
    probe batch suggested may be wrong for a model whose images are mostly bright, say)."""

    def __init__(self, state: ExplorerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.text = QTextBrowser()
        self.text.setOpenLinks(False)
        self.setMinimumWidth(250)
        self.range_row = QWidget()
        row = QHBoxLayout(self.range_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Output range"))
        self.range_combo = QComboBox()
        self.range_combo.addItems(list(RANGES))
        self.range_combo.setToolTip(
            "The range of the model's output pixels: [0, 1] (sigmoid) or [-1, 1] (tanh). "
            "Images are shown, encoded and exported through it"
        )
        self.range_combo.textActivated.connect(self._on_range)
        row.addWidget(self.range_combo, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.range_row)
        layout.addWidget(self.text)
        state.modelChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        self.text.setHtml(describe(self.state))
        model = self.state.model
        switchable = model is not None and hasattr(model, "set_output_range")
        self.range_row.setVisible(switchable)
        if switchable:
            with signals_blocked(self.range_combo):
                self.range_combo.setCurrentText(range_name(model.output_range))

    def _on_range(self, text: str) -> None:
        self.state.set_output_range(RANGES[text])

    def plain_text(self) -> str:
        return self.text.toPlainText()
