"""ONNX beside PyTorch: the same model exported with `latent-explorer export --onnx`, in the same run.

For each latent checkpoint chosen (a VAE and a GAN; the bundled vae-mnist-32d and dcgan-faces when
present), the export is opened in the app as a user would open any ONNX model, and measured against
the checkpoint itself:

- "Slider to pixels (ONNX)" and "2-D map 16x16 (ONNX)": benchmarks.slider / benchmarks.maps, the real
  main window, on the .onnx file; the baseline is the same measurement on the .safetensors file.
- "ONNX backends": bare no_grad decodes of 1 latent (a slider move) and of 256 (a 16x16 map) by
  onnxruntime (what the app uses for decoding on the CPU), by the torch interpreter of the same graph
  (engines.foreign.onnx_torch), and by the model's own PyTorch module; and one gradient step of
  projection (decode, MSE, grad wrt z), which only the torch interpreter can run (onnxruntime has no
  gradients): that is why projection, and only projection, goes through it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from . import Row, median, models_of, module_main, ms, p50_p95, percentile, timed
from . import maps as maps_bench
from . import slider as slider_bench

PREFERRED = ("vae-mnist-32d", "dcgan-faces")


def _chosen(paths: dict[str, Path]) -> dict[str, Path]:
    latent = models_of(paths, ("vae", "gan"))
    chosen = {name: latent[name] for name in PREFERRED if name in latent}
    return chosen or dict(list(latent.items())[:2])


def _backends(native_path: Path, onnx_path: Path, repeat: int) -> list[Row]:
    import torch

    from engines.checkpoint import load_checkpoint

    native = load_checkpoint(native_path).model.float().eval()
    onnx_model = load_checkpoint(onnx_path).model
    runner = onnx_model.decoder_runner
    dim = native.latent_dim
    rows = []
    name = native_path.stem
    for n, what in ((1, "1 latent (a slider move)"), (256, "256 latents (a 16x16 map)")):
        z = torch.randn((n, dim), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            ort_times = timed(lambda z=z: runner.run(z, torch.device("cpu")), repeat)
            torch_times = timed(lambda z=z: runner.run(z, torch.device("cpu"), grad=True), repeat)
            native_times = timed(lambda z=z: native.decode(z), repeat)
        best = min(("onnxruntime", median(ort_times)), ("torch interpreter", median(torch_times)), key=lambda x: x[1])
        rows.append(
            Row(
                "ONNX backends",
                f"{name}: decode {what}",
                f"onnxruntime p50 {ms(median(ort_times))}; torch interpreter p50 {ms(median(torch_times))}",
                f"PyTorch module p50 {ms(median(native_times))}",
                f"{median(ort_times) / median(native_times):.2f}x (onnxruntime / PyTorch); fastest ONNX: {best[0]}",
            )
        )
    image = native.decode(torch.randn((1, dim), generator=torch.Generator().manual_seed(1))).detach()

    def step(model):
        z = torch.zeros((1, dim), requires_grad=True)
        loss = (model.decode(z) - image).pow(2).mean()
        torch.autograd.grad(loss, z)

    graph_times, native_times = timed(lambda: step(onnx_model), repeat), timed(lambda: step(native), repeat)
    rows.append(
        Row(
            "ONNX backends",
            f"{name}: one projection step (decode + gradient wrt z)",
            f"torch interpreter p50 {ms(median(graph_times))} (onnxruntime: no gradients)",
            f"PyTorch module p50 {ms(median(native_times))}",
            f"{median(graph_times) / median(native_times):.2f}x PyTorch",
        )
    )
    return rows


def run(paths: dict[str, Path], quick: bool) -> list[Row]:
    from engines.checkpoint import load_checkpoint
    from engines.foreign.export import export_onnx

    rows: list[Row] = []
    moves, maps, repeat = (60, 10, 30) if quick else (200, 30, 100)
    folder = Path(tempfile.mkdtemp(prefix="latent-explorer-bench-onnx-"))
    for name, path in _chosen(paths).items():
        exported = export_onnx(load_checkpoint(path), folder, name).decoder
        gui, _bare, _where = slider_bench.measure(exported, moves)
        gui_native, _bare, _where = slider_bench.measure(path, moves)
        rows.append(
            Row(
                "Slider to pixels (ONNX)",
                f"{name}.onnx, onnxruntime CPU ({len(gui)} moves)",
                p50_p95(gui),
                f"{name}.safetensors in PyTorch: {p50_p95(gui_native)}",
                f"{percentile(gui, 50) / percentile(gui_native, 50):.2f}x PyTorch (p50)",
                "p95 <= 16 ms",
                percentile(gui, 95) <= slider_bench.TARGET_P95,
            )
        )
        tiles = maps_bench.measure(exported, maps, 16)["map"]
        tiles_native = maps_bench.measure(path, maps, 16)["map"]
        rows.append(
            Row(
                "2-D map 16x16 (ONNX)",
                f"{name}.onnx, onnxruntime CPU ({len(tiles)} maps)",
                p50_p95(tiles),
                f"{name}.safetensors in PyTorch: {p50_p95(tiles_native)}",
                f"{percentile(tiles, 50) / percentile(tiles_native, 50):.2f}x PyTorch (p50)",
                "p50 <= 50 ms",
                percentile(tiles, 50) <= maps_bench.TARGETS[16],
            )
        )
        rows += _backends(path, exported, repeat)
    return rows


if __name__ == "__main__":
    raise SystemExit(module_main("onnx", run))
