"""Write a model card (markdown) beside a bundled checkpoint, from the checkpoint's own metadata.

    python tools/model_card.py checkpoints/vae-mnist-2d.safetensors [--notes TEXT]

Everything in the card comes from the file: data, architecture, the exact training command, time
and machine, per-epoch losses, and the metrics stored by `latent-explorer eval --save`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engines.checkpoint import load_checkpoint  # noqa: E402
from engines.data.split import describe_record  # noqa: E402
from engines.references import references_for  # noqa: E402

ARCHITECTURE = {
    "vae": "Convolutional VAE: stride-2 conv encoder -> fc -> (mu, log sigma^2); fc -> transposed-conv decoder",
    "gan": "DCGAN: fractionally-strided conv generator (batchnorm, ReLU, Tanh); strided conv discriminator (LeakyReLU)",
    "stylegan": "Style-based generator (StyleGAN2-style): mapping MLP z -> w, learned 4x4 constant, modulated/demodulated "
    "convolutions with one w per layer (W+), fixed per-layer noise, skip toRGB outputs; residual discriminator with "
    "minibatch stddev; non-saturating loss, lazy R1, style-mixing regularisation",
    "pixelcnn": "Gated PixelCNN: vertical + horizontal stacks, mask A then B, gated tanh*sigmoid units, skip-free residual h-stack",
    "classifier": "Small convolutional classifier trained by the project for the evaluation metrics",
}
CONDITIONAL = {
    "gan": "G reads [z, one-hot class] (its first layer's class columns are the class embedding); D reads the "
    "image with the class as constant label maps on its channels",
    "stylegan": "the mapping reads [z, class embedding], each normalised; projection discriminator",
}
BINARIZE = {
    "none": "{colour} intensities in [0, 1] (not binarized)",
    "threshold": "binarized with a fixed threshold (x > 0.5)",
    "stochastic": "binarized stochastically once per image (Bernoulli(x), fixed seed per image), like the standard binarized MNIST",
}

PRECISION = {
    "fp32": "float32",
    "bf16": "bfloat16 autocast for the training forward passes (float32 weights and evaluation)",
}


def portable(command: str) -> str:
    """The command with the training machine's absolute paths replaced: the dataset root by $DATA, any
    other file by runs/NAME, so that a card names no machine's folders."""
    words = command.split(" ")
    for i, word in enumerate(words):
        if word.startswith("/"):
            words[i] = "$DATA" if i and words[i - 1] == "--data-root" else f"runs/{Path(word).name}"
    return " ".join(words)


def _carried(ckpt) -> str:
    n = len(ckpt.sample["images"])
    if ckpt.dataset.get("name") == "folder":  # tools/publish_checkpoint.py spreads a folder's sample
        return f"{n} held-out images spread over its folder's classes"
    return f"the first {n} test images"


def card(path: Path, notes: str = "", eval_args: str | None = None) -> str:
    """The card of a published checkpoint; `eval_args` are the arguments its Reproduce line gives eval
    after the file (default: the dataset root for torchvision datasets, nothing for generated ones)."""
    ckpt = load_checkpoint(path)
    t, d = ckpt.training, ckpt.dataset
    params = sum(p.numel() for p in ckpt.model.parameters())
    lines = [
        f"# {path.stem}",
        "",
        *([notes.strip(), ""] if notes else []),
        "## Model",
        f"- kind: `{ckpt.kind}` — {ARCHITECTURE.get(ckpt.kind, '')}",
        *(
            [
                f"- class-conditional on {ckpt.model.num_classes} classes ({', '.join(ckpt.model.class_names)}): "
                + CONDITIONAL.get(ckpt.kind, "")
            ]
            if ckpt.model.num_classes
            else []
        ),
        f"- config: `{json.dumps(ckpt.model.config_dict())}`",
        f"- parameters: {params:,}",
        f"- file: `{path.name}` ({path.stat().st_size / 1e6:.1f} MB: weights"
        + (f" and {_carried(ckpt)}, for machines without the dataset)" if ckpt.sample else " only)"),
        "",
        "## Data",
        f"- dataset: `{d.get('name')}`, {d.get('image_size')}x{d.get('image_size')}x{d.get('channels')}",
        f"- pixels: {BINARIZE.get(d.get('binarize', 'none'), d.get('binarize')).format(colour='RGB' if d.get('channels') == 3 else 'grayscale')}",
        "",
        "## Training",
        f"- command: `{portable(t.get('command', 'n/a'))}`",
        *[f"- resumed with: `{portable(c)}`" for c in t.get("resumed_with", [])],
        *(
            ["- (absolute paths of the training machine are shown as `$DATA`, the dataset root, and `runs/NAME`)"]
            if any(portable(c) != c for c in [t.get("command", ""), *t.get("resumed_with", [])])
            else []
        ),
        f"- steps: {t.get('step')} ({t.get('epoch', 0):.2f} epochs), batch {t.get('train_config', {}).get('batch_size')}, seed {t.get('train_config', {}).get('seed')}",
        f"- time: {t.get('seconds', 0) / 60:.1f} min on {t.get('machine', t.get('device', 'n/a'))}",
        f"- precision: {PRECISION.get(t.get('train_config', {}).get('precision', 'fp32'))}",
        "",
    ]
    history = t.get("history", [])
    if history:
        # Each epoch's held-out figures say their split: "val" (the validation slice, engines.data.split)
        # or "test" (runs from before validation splits were judged on the test split each epoch).
        split = "val" if any("val" in h for h in history) else "test"
        keys = list(history[0].get(split) or history[0].get("train"))
        lines += [
            f"Per-epoch figures: train on the training images; {split} on "
            + (
                "the validation images: " + describe_record(t.get("validation"))
                if split == "val"
                else "the test split (this run predates validation splits)"
            )
            + ". The metrics below are on the test split.",
            "",
            "| epoch | "
            + " | ".join(f"train {k}" for k in keys)
            + " | "
            + " | ".join(f"{split} {k}" for k in keys)
            + " |",
            "|---" * (1 + 2 * len(keys)) + "|",
        ]
        for h in history:
            held = h.get("val") or h.get("test")
            name = "val" if "val" in h else "test"
            lines.append(
                f"| {h['epoch']} | "
                + " | ".join(f"{h['train'].get(k, float('nan')):.3f}" for k in keys)
                + " | "
                + " | ".join(
                    f"{held.get(k, float('nan')):.3f}" + ("" if name == split else f" ({name})") if held else "-"
                    for k in keys
                )
                + " |"
            )
        lines.append("")
    lines += class_section(ckpt.metrics.get("eval", {}))
    lines += style_section(ckpt.metrics.get("eval", {}))
    if ckpt.metrics:
        root = (
            " --data-root ../shared/datasets"
            if d.get("name") in ("mnist", "fashion-mnist", "cifar10", "celeba")
            else ""
        )
        if eval_args is not None:
            root = f" {eval_args}"
        lines += [
            "## Metrics",
            "",
            f"Reproduce: `latent-explorer eval checkpoints/{path.name}{root}` (seeded: same numbers). "
            "Every figure here is on the test split (`split` in the JSON), which training never saw.",
            "",
            "```json",
            json.dumps(ckpt.metrics, indent=2),
            "```",
            "",
        ]
        measured = ckpt.metrics.get("eval", {})
        refs = references_for(ckpt.kind, d.get("name"), measured.get("binarize", d.get("binarize")))
        if refs:
            lines += ["## Published references (same protocol)", ""]
            lines += [f"- {r.metric} {r.value:g}: {r.source}" for r in refs]
            lines.append("")
    return "\n".join(lines)


def class_section(m: dict) -> list[str]:
    """A conditional model's class agreement (eval's class_agreement) as a table."""
    a = m.get("class_agreement")
    if not a:
        return []
    return [
        "## Class agreement",
        "",
        f"{a['samples_per_class']} samples of each class (seeded), each read by `{m.get('classifier')}`: the "
        f"fraction read as the class asked for. Overall: **{a['overall']:.1%}**.",
        "",
        "| class | " + " | ".join(a["per_class"]) + " |",
        "|---" * (1 + len(a["per_class"])) + "|",
        "| agreement | " + " | ".join(f"{v:.1%}" for v in a["per_class"].values()) + " |",
        "| read most often instead | " + " | ".join(str(v or "-") for v in a["confused_with"].values()) + " |",
        "",
    ]


def style_section(m: dict) -> list[str]:
    """A style model's Z-vs-W figures (eval's perceptual_path_length, clean_edits, clean_edits_w) as tables."""
    ppl, z_edits, w_edits = m.get("perceptual_path_length"), m.get("clean_edits"), m.get("clean_edits_w")
    if not ppl:
        return []
    lines = [
        "## Z vs W",
        "",
        f"Perceptual path length ({ppl['z']['pairs']} paths, epsilon {ppl['z']['epsilon']:g}, full paths, "
        f"{ppl['feature_space']}; lower is smoother):",
        "",
        "| space | path | PPL | median |",
        "|---|---|---|---|",
        *[f"| {k.upper()} | {ppl[k]['path']} | {ppl[k]['ppl']:.4g} | {ppl[k]['median']:.4g} |" for k in ("z", "w")],
        "",
    ]
    if z_edits and w_edits:
        attributes = list(z_edits["best"])
        lines += [
            "Clean-edit rates (the strict rule of `clean_edits`, same protocol in both spaces; latents in W are "
            "mapping(z), labelled by the classifier):",
            "",
            "| method | " + " | ".join(f"{a} in Z | {a} in W" for a in attributes) + " |",
            "|---" * (1 + 2 * len(attributes)) + "|",
        ]
        for method in z_edits["methods"]:
            cells = [f"{e['methods'][method][a]['rate'] * 100:.1f}%" for a in attributes for e in (z_edits, w_edits)]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines += [
            "| boundary accuracy / R² | "
            + " | ".join(f"{z_edits['boundaries'][a]:.3f} | {w_edits['boundaries'][a]:.3f}" for a in attributes)
            + " |",
            "",
            "Boundary accuracy / R² of every attribute (Z -> W): "
            + ", ".join(f"{k} {v:.3f} -> {w_edits['boundaries'][k]:.3f}" for k, v in z_edits["boundaries"].items()),
            "",
        ]
    return lines


def existing_notes(card_path: Path) -> str:
    """The hand-written paragraph of a card written before (between the title and "## Model"), kept on rewrites."""
    if not card_path.is_file():
        return ""
    text = card_path.read_text()
    start, end = text.find("\n"), text.find("## Model")
    return text[start:end].strip() if 0 <= start < end else ""


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("--notes", default="", help="the card's opening paragraph (default: the existing card's)")
    parser.add_argument(
        "--eval-args",
        help="what the Reproduce line passes eval after the file (an image folder model: its held-out and "
        "training folders and its classifier); default: the dataset root for torchvision datasets",
    )
    args = parser.parse_args()
    path = Path(args.checkpoint)
    notes = args.notes or existing_notes(path.with_suffix(".md"))
    path.with_suffix(".md").write_text(card(path, notes, args.eval_args))
    print(f"wrote {path.with_suffix('.md')}")
