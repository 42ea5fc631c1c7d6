"""The command line: `latent-explorer train | eval | sample`. No Qt is imported here."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .checkpoint import CheckpointError, load_checkpoint, update_checkpoint
from .data import BINARIZE_MODES, DATASET_NAMES, DatasetError, DataSpec, load_dataset
from .device import pick_device
from .evaluation import classifier_filename
from .images import save_png, to_grid
from .models import MODEL_CLASSES
from .models.classifier import config_for_dataset
from .references import HIGHER_IS_BETTER, meets, references_for, target_for
from .training import (
    PRECISIONS,
    CheckpointSaved,
    Diverged,
    EpochEnd,
    Finished,
    SampleGrid,
    Started,
    StepDone,
    TrainConfig,
    Trainer,
    create_model,
    distributed,
)
from .training.defaults import run_data_spec, run_model_config
from .training.tensorboard import TensorBoardLogger

log = logging.getLogger(__name__)


class CLIError(Exception):
    """A user mistake reported as one line."""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latent-explorer", description="Train, evaluate and sample generative image models.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model (also under torchrun)",
                       epilog="Multi-process: torchrun --nproc_per_node N -m explorer train ... (DDP; gloo on CPU, nccl on GPU)")
    t.add_argument("--model", choices=sorted(MODEL_CLASSES), help="required unless --resume")
    t.add_argument("--dataset", choices=DATASET_NAMES, help="required unless --resume")
    t.add_argument("--data-root", help="torchvision root folder, or the image folder for --dataset folder")
    t.add_argument("--epochs", type=_positive, help="default 10 (a resumed run: its own)")
    t.add_argument("--max-steps", type=_positive, help="stop after this many steps in all")
    t.add_argument("--latent-dim", type=int, help="VAE/GAN latent size (VAE default 16, GAN 64)")
    t.add_argument("--batch-size", type=_positive, help="per process; default 128 (a resumed run: its own)")
    t.add_argument("--lr", type=float, help="learning rate (default: the model's: Adam 1e-3, GAN 2e-4, WGAN-GP 1e-4)")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    t.add_argument("--seed", type=int, help="default 0 (a resumed run: its own)")
    t.add_argument("--image-size", type=int, choices=(28, 32, 64), help="default: the dataset's own")
    t.add_argument("--channels", type=int, choices=(1, 3), help="default: the dataset's own")
    t.add_argument("--binarize", choices=BINARIZE_MODES, help="default: stochastic for a 2-level PixelCNN, else none")
    t.add_argument("--gan-loss", choices=("ns", "wgan-gp"), default="ns", help="non-saturating GAN or WGAN-GP")
    t.add_argument("--d-steps", type=int, default=0, help="discriminator steps per generator step (0: 1 for ns, 5 for wgan-gp)")
    t.add_argument("--levels", type=int, help="PixelCNN intensity levels (default 2 for grayscale, 16 for colour)")
    t.add_argument("--hidden", type=int, help="PixelCNN hidden channels (default 64; a multiple of the channels)")
    t.add_argument("--layers", type=int, help="PixelCNN gated layers (default 10)")
    t.add_argument("--beta", type=float, default=1.0, help="VAE KL weight (1 = the ELBO)")
    t.add_argument("--precision", choices=PRECISIONS,
                   help="fp32 (default), or bf16: bfloat16 autocast, ~2x faster where the CPU/GPU has bf16 units")
    t.add_argument("--sample-every", type=int, default=0, help="steps between sample grids (0: each epoch end)")
    t.add_argument("--checkpoint-every", type=int, default=0, help="steps between checkpoints (0: each epoch end)")
    t.add_argument("--resume", metavar="FILE", help="continue the run saved in FILE with its own settings (writes back to --out, default FILE)")
    t.add_argument("--tensorboard", metavar="DIR", help="also write TensorBoard events to DIR")
    t.add_argument("--out", help="checkpoint file (default: runs/<model>-<dataset>.safetensors)")

    e = sub.add_parser("eval", help="held-out metrics of a checkpoint")
    e.add_argument("file")
    e.add_argument("--data-root")
    e.add_argument("--k", type=_positive, default=100, help="importance samples for the VAE's NLL estimate")
    e.add_argument("--limit", type=_positive, help="evaluate the first N test images only")
    e.add_argument("--binarize", choices=BINARIZE_MODES, help="override the binarization of the test data")
    e.add_argument("--batch-size", type=_positive, default=100)
    e.add_argument("--device", default="auto")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    e.add_argument("--save", action="store_true", help="store the metrics in the checkpoint's metadata")
    e.add_argument("--classifier", metavar="FILE",
                   help="classifier checkpoint judging a GAN's samples or faces arithmetic (default: the bundled "
                        "checkpoints/lenet-mnist or attributes-faces, else runs/)")
    e.add_argument("--n", type=_positive, default=10_000, help="samples for the Inception Score and Frechet distance")
    e.add_argument("--edits", type=_positive, default=200, help="faces edited per attribute vector (faces)")
    e.add_argument("--trials", type=_positive, default=100, help="exemplar-arithmetic trials (faces)")

    s = sub.add_parser("sample", help="write a grid of samples")
    s.add_argument("file")
    s.add_argument("--n", type=_positive, default=64)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--temperature", type=float, default=1.0, help="latent scale (VAE), softmax temperature (PixelCNN)")
    s.add_argument("--truncation", type=float, help="GAN truncation threshold")
    s.add_argument("--scale", type=_positive, default=4, help="enlarge each pixel this many times")
    s.add_argument("--device", default="auto")
    s.add_argument("--out", required=True, help="PNG file to write")
    return parser


# --- train ------------------------------------------------------------------------------------------
def _data_spec(args: argparse.Namespace) -> DataSpec:
    if args.dataset == "folder" and not args.data_root:
        raise CLIError("--dataset folder needs --data-root pointing at a folder of images")
    return run_data_spec(args.model, args.dataset, args.data_root, args.image_size, args.channels, args.levels,
                         args.binarize)


def _model_config(args: argparse.Namespace, spec: DataSpec, dataset=None) -> dict[str, Any]:
    if args.model == "classifier":  # heads from the dataset's labels: one-hot -> softmax; else per attribute
        return config_for_dataset(dataset)
    return run_model_config(args.model, spec, args.latent_dim, args.levels, args.hidden, args.layers,
                            args.gan_loss, args.d_steps, args.beta)


def _train_config(args: argparse.Namespace, out: Path, saved: dict[str, Any], device: torch.device) -> TrainConfig:
    """Command-line values win; a resumed run keeps its own settings for the rest; then the defaults."""
    def pick(name: str, default: Any) -> Any:
        value = getattr(args, name)
        return value if value is not None else saved.get(name, default)

    return TrainConfig(
        epochs=pick("epochs", 10), batch_size=pick("batch_size", 128), lr=pick("lr", None),
        max_steps=args.max_steps, seed=pick("seed", 0), device=str(device), sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every, checkpoint_path=str(out),
        precision=pick("precision", "fp32"),
        n_samples=saved.get("n_samples", 16 if args.model == "pixelcnn" else 64),
    )


def cmd_train(args: argparse.Namespace) -> int:
    if not args.resume and not (args.model and args.dataset):
        raise CLIError("--model and --dataset are required (or --resume FILE to continue a run)")
    default_name = classifier_filename(args.dataset) if args.model == "classifier" else f"{args.model}-{args.dataset}.safetensors"
    out = Path(args.out or args.resume or f"runs/{default_name}")
    if out.suffix != ".safetensors":
        raise CLIError(f"--out must end in .safetensors, not {out.name}")
    board = TensorBoardLogger(args.tensorboard) if args.tensorboard and distributed.is_main_process() else None
    saved: dict[str, Any] = {}
    if args.resume:
        resumed = load_checkpoint(args.resume)
        args.model = resumed.kind
        spec = DataSpec.from_dict({**resumed.dataset, **({"root": args.data_root} if args.data_root else {})})
        saved = resumed.training.get("train_config", {})
    else:
        spec = _data_spec(args)
    ctx, device = distributed.setup(args.device)  # torchrun: join the process group
    try:
        train_data = load_dataset(spec, train=True)
        test_data = None if spec.name == "folder" else load_dataset(spec, train=False)
        skipped = getattr(train_data, "skipped", {})
        if skipped and ctx.is_main:
            print(f"skipped {sum(skipped.values())} file(s): " + ", ".join(f"{n} {why}" for why, n in skipped.items()), file=sys.stderr)
        config = _train_config(args, out, saved, device)
        command = "latent-explorer " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else None
        if args.resume:
            trainer = Trainer.from_checkpoint(args.resume, train_data, config, test_data, dist=ctx)
            if command:  # the card shows how the run was made: its first command, then each resume
                trainer.summary["resumed_with"] = [*trainer.summary.get("resumed_with", []), command]
        else:
            model = create_model(args.model, _model_config(args, spec, train_data), seed=config.seed)
            summary = {"command": command} if command else None
            trainer = Trainer(model, train_data, config, test_data, summary=summary, dist=ctx)
        if ctx.enabled and ctx.is_main:
            print(f"distributed: {ctx.world_size} processes, {device.type}", file=sys.stderr)
        return _run_training(trainer, out, quiet=not ctx.is_main, board=board)
    finally:
        distributed.teardown()


def _run_training(trainer: Trainer, out: Path, quiet: bool = False, board: TensorBoardLogger | None = None) -> int:
    from tqdm import tqdm

    def on_interrupt(signum, frame):  # first Ctrl+C: stop cleanly after this step, with a checkpoint
        tqdm.write("stopping after this step (Ctrl+C again to abort without saving)...")
        trainer.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    bar = None
    code = 0
    try:
        for event in trainer.run():
            if board is not None:
                board.log(event)
            if quiet:  # other ranks of a distributed run: the main process reports
                continue
            if isinstance(event, Started):
                bar = tqdm(total=event.total_steps, initial=event.step, unit="step", dynamic_ncols=True,
                           desc=f"train {trainer.model.kind} on {event.device}")
            elif isinstance(event, StepDone):
                bar.update(1)
                if event.step % 10 == 0 or event.step == trainer.total_steps:
                    shown = {k: f"{v:.4g}" for k, v in event.losses.items()}
                    bar.set_postfix(shown | {"img/s": f"{event.images_per_s:.0f}"}, refresh=False)
            elif isinstance(event, EpochEnd):
                train = ", ".join(f"{k} {v:.3f}" for k, v in event.train_losses.items())
                test = ", ".join(f"{k} {v:.3f}" for k, v in event.test_losses.items()) or "-"
                tqdm.write(f"epoch {event.epoch + 1}: train {train} | test {test} | {event.seconds / 60:.2f} min")
            elif isinstance(event, SampleGrid):
                save_png(event.grid, out.with_name(out.stem + "_samples.png"), scale=2)
            elif isinstance(event, CheckpointSaved):
                log.info("checkpoint written: %s", event.path)
            elif isinstance(event, Diverged):
                tqdm.write(f"error: {event.message}")
                code = 1
            elif isinstance(event, Finished):
                if bar is not None:
                    bar.close()
                kept = " (last good checkpoint kept)" if event.reason == "diverged" else ""
                print(f"{event.reason} at step {event.step} in {event.seconds / 60:.1f} min; checkpoint: {out}{kept}")
    finally:
        signal.signal(signal.SIGINT, previous)
        if bar is not None:
            bar.close()
        if board is not None:
            board.close()
    return code


# --- eval and sample --------------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation import classifier_metrics, evaluate, find_classifier, heldout_dataset, needs_classifier

    device = pick_device(args.device)
    ckpt = load_checkpoint(args.file, device=device)
    judged = needs_classifier(ckpt) or (args.classifier is not None and ckpt.kind == "vae")
    judge = None
    if judged:  # find the classifier before any long computation, so a missing one fails at once
        judge = load_checkpoint(find_classifier(ckpt.dataset.get("name", ""), args.classifier), device=device)
    metrics: dict[str, Any] = {}
    if ckpt.kind != "gan":  # a GAN has no likelihood: only classifier-judged metrics
        dataset = heldout_dataset(ckpt, args.data_root, args.binarize)
        from tqdm import tqdm

        with tqdm(total=min(args.limit or len(dataset), len(dataset)), unit="img", disable=args.json, leave=False) as bar:
            metrics = evaluate(ckpt, dataset, k=args.k, limit=args.limit, batch_size=args.batch_size, seed=args.seed,
                               progress=lambda done, total: bar.update(done - bar.n))
    if judge is not None:
        judged_metrics = classifier_metrics(ckpt, judge, args.data_root, n=args.n, edits=args.edits, trials=args.trials,
                                            batch_size=args.batch_size, seed=args.seed,
                                            sample_scores=ckpt.kind == "gan" or args.classifier is not None)
        seconds = metrics.get("seconds", 0.0) + judged_metrics["seconds"]
        metrics = {**judged_metrics, **metrics, "seconds": round(seconds, 1)}
    if args.save:
        update_checkpoint(args.file, metrics={"eval": metrics})
    refs = references_for(ckpt.kind, ckpt.dataset.get("name"), metrics.get("binarize", ckpt.dataset.get("binarize")))
    if args.json:
        print(json.dumps({**metrics, "references": [r.to_dict() for r in refs]}, indent=2))
        return 0
    if ckpt.kind == "gan":
        print(f"{Path(args.file).name}: gan on {metrics['dataset']}")
    else:
        print(f"{Path(args.file).name}: {ckpt.kind} on {metrics['dataset']} test set ({metrics['images']} images, binarize={metrics['binarize']})")
    if ckpt.kind == "vae":
        print(f"  ELBO               {metrics['elbo']:.2f} nats  (negative ELBO {metrics['neg_elbo']:.2f}: recon {metrics['recon']:.2f} + KL {metrics['kl']:.2f})")
        print(f"  IW NLL (k={metrics['iw_k']:<4})    {metrics['iw_nll']:.2f} nats")
        print(f"  active units       {metrics['active_units']} of {ckpt.model.config.latent_dim}")
    elif ckpt.kind == "pixelcnn":
        print(f"  NLL                {metrics['nll']:.2f} nats  ({metrics['bits_per_dim']:.4f} bits/dim)")
    elif ckpt.kind == "classifier":
        print(f"  loss               {metrics['loss']:.4f}")
        for key, value in metrics.items():
            if key == "accuracy" or key.endswith(("_acc", "_mae")):
                print(f"  {key:<18} {value:.4f}")
    if judge is not None:
        _print_judged(metrics, judge)
    _print_references(ckpt.kind, metrics, refs)
    print(f"  ({metrics['seconds']} s)")
    return 0


def _print_references(kind: str, m: dict[str, Any], refs) -> None:
    """Published figures measured under the same protocol, and the project's targets, beside the model's."""
    flat = {**m, **m.get("samples", {})}
    for name, r in m.get("attribute_arithmetic", {}).items():
        flat[f"{name}_rate"] = r["rate"]
    for r in refs:
        if r.metric in flat:
            print(f"  published          {r.metric} {r.value:g} ({r.source}); this model: {flat[r.metric]:.4g}")
    dataset, binarize = m.get("dataset"), m.get("binarize")
    for metric in ("iw_nll", "nll", "inception_score"):
        target = target_for(kind, dataset, metric, binarize)
        if target is not None and metric in flat:
            sign = ">=" if metric in HIGHER_IS_BETTER else "<="
            print(f"  target             {metric} {sign} {target:g}: {_met(meets(metric, flat[metric], target))}")
    target = target_for(kind, dataset, "arithmetic_rate")
    for name in m.get("attribute_arithmetic", {}) if target is not None else ():
        rate = flat[f"{name}_rate"]
        print(f"  target             {name} vector success >= {target:.0%}: {_met(meets('arithmetic_rate', rate, target))}")


def _met(met: bool) -> str:
    return "met" if met else "not met"


def _print_judged(m: dict[str, Any], judge) -> None:
    """The classifier-judged part of `eval`'s report."""
    test = ", ".join(f"{k} {v:.3f}" for k, v in m.get("classifier_test", {}).items() if k != "loss")
    print(f"  judged by          {Path(m['classifier']).name}" + (f" (its test figures: {test})" if test else ""))
    s = m.get("samples")
    if s:
        real = f"{s['real_images']} real held-out images" if "real_images" in s else "no real data"
        print(f"  samples            {s['samples']} (against {real})")
        if "inception_score" in s:
            k = len(s["class_fractions"])
            line = f"  Inception Score    {s['inception_score']:.3f} +- {s['inception_score_std']:.3f}  (max {k}"
            if "real_inception_score" in s:
                line += f"; real held-out images: {s['real_inception_score']:.3f} +- {s['real_inception_score_std']:.3f}"
            print(line + ")")
            print("  class fractions    " + " ".join(f"{i}:{f:.3f}" for i, f in enumerate(s["class_fractions"])))
        if "fid" in s:
            line = f"  Frechet distance   {s['fid']:.4g}  (classifier features"
            if "train_test_fid" in s:
                line += f"; real train vs held-out: {s['train_test_fid']:.4g}"
            print(line + ")")
    arithmetic = m.get("attribute_arithmetic", {})
    if arithmetic:
        first = next(iter(arithmetic.values()))
        print(f"  attribute vectors  z + s v, v = mean z with - mean z without (latents: {first['latents']}), on faces"
              f" without the attribute;\n                     success = gains it, other binary attributes unchanged,"
              f" continuous ones within {first['tolerance']}")
        for name, r in arithmetic.items():
            line = (f"    {name:<16} {r['rate']:.3f} at s=1 of {r['n']} (gained {r['gained']:.3f}, binary kept "
                    f"{r['others_kept']:.3f}, continuous kept {r['continuous_kept']:.3f})")
            if "tuned_strength" in r:
                line += f"; s={r['tuned_strength']:g} (tuned on other faces): {r['tuned_rate']:.3f}"
            print(line)
    e = m.get("exemplar_arithmetic")
    if e:
        a, b = e["first"], e["second"]
        print(f"  exemplar arithmetic {a} - neutral + {b} -> {a} with {b} ({e['k']} exemplars each, {e['trials']} trials): "
              f"{e['rate']:.3f} ({a} {e[f'has_{a}']:.3f}, {b} {e[f'has_{b}']:.3f})")


def cmd_sample(args: argparse.Namespace) -> int:
    if not args.out.lower().endswith(".png"):
        raise CLIError(f"--out must be a .png file, not {args.out}")
    ckpt = load_checkpoint(args.file, device=pick_device(args.device))
    gen = torch.Generator().manual_seed(args.seed)
    model = ckpt.model
    if not hasattr(model, "sample"):
        raise CLIError(f"{Path(args.file).name} is a {ckpt.kind}; it does not generate images")
    if model.kind == "gan":
        images = model.sample(args.n, generator=gen, truncation=args.truncation)
    else:
        images = model.sample(args.n, generator=gen, temperature=args.temperature)
    save_png(to_grid(images), args.out, scale=args.scale)
    print(f"wrote {args.n} samples to {args.out}")
    return 0


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "sample": cmd_sample}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)  # bad arguments: argparse prints usage + one line, exits 2
    start = time.perf_counter()
    try:
        return COMMANDS[args.command](args)
    except (CLIError, CheckpointError, DatasetError, ValueError, OSError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"latent-explorer {args.command}: error: {message}", file=sys.stderr)
        return 1
    finally:
        log.debug("%s took %.1f s", args.command, time.perf_counter() - start)
