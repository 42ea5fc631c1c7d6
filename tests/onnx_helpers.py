"""Models from elsewhere, for the ONNX and plugin tests: a plain-PyTorch MLP VAE (pytorch/examples'
784-400-20 architecture, none of this project's classes), trained a few steps and exported with
torch.onnx.export exactly as a user would, plus a small builder of hand-made ONNX graphs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engines.data import DataSpec, load_dataset

SPEC_28 = DataSpec("shapes", image_size=28, channels=1)
README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(after: str) -> str:
    """The first ```python block of README.md after the line containing `after` (the examples users copy)."""
    lines = README.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    opened = [i for i in range(start + 1) if lines[i].strip().startswith("```")]
    if opened and lines[opened[-1]].strip() == "```python" and len(opened) % 2:  # `after` is inside that block
        begin = opened[-1]
    else:
        begin = next(i for i in range(start, len(lines)) if lines[i].strip() == "```python")
    end = next(i for i in range(begin + 1, len(lines)) if lines[i].strip() == "```")
    return "\n".join(lines[begin + 1 : end]) + "\n"


class MLPVAE(nn.Module):
    """pytorch/examples vae/main.py: 784-400-20, Bernoulli decoder."""

    def __init__(self, hidden: int = 400, latent: int = 20) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, 784)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.fc1(x.reshape(-1, 784)))
        return self.fc21(h), self.fc22(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))).reshape(-1, 1, 28, 28)

    def forward(self, x: torch.Tensor):
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar


class Decoder(nn.Module):
    def __init__(self, vae: MLPVAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, z):
        return self.vae.decode(z)


class Encoder(nn.Module):
    def __init__(self, vae: MLPVAE) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, x):
        return self.vae.encode(x)


def train_mlp_vae(steps: int = 40, seed: int = 0) -> MLPVAE:
    """A few Adam steps of the ELBO on the procedural shapes (28x28x1): no files, no project classes."""
    torch.manual_seed(seed)
    vae = MLPVAE()
    data = load_dataset(SPEC_28, train=True)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)
    for step in range(steps):
        x, _ = data.get_batch(np.arange(64 * step, 64 * (step + 1)) % len(data))
        recon, mu, logvar = vae(x)
        bce = F.binary_cross_entropy(recon.reshape(-1, 784), x.reshape(-1, 784), reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        opt.zero_grad()
        ((bce + kld) / len(x)).backward()
        opt.step()
    return vae.eval()


def export(
    module: nn.Module, example: torch.Tensor, path: Path, inputs: list[str], outputs: list[str], dynamic: bool = True
) -> Path:
    """torch.onnx.export as the README shows it (a free batch dimension unless `dynamic` is False)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the README's lines must run warning-free
        torch.onnx.export(
            module.eval(),
            (example,),
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_shapes=({0: "batch"},) if dynamic else None,
            verbose=False,
        )
    return path


def export_mlp_vae(vae: MLPVAE, folder: Path, dynamic: bool = True, sidecar: dict | None = None) -> Path:
    """decoder.onnx + encoder.onnx + decoder.json in `folder`; returns the decoder's path."""
    folder.mkdir(parents=True, exist_ok=True)
    batch = 2 if dynamic else 1
    export(Decoder(vae), torch.randn(batch, 20), folder / "decoder.onnx", ["z"], ["image"], dynamic)
    export(Encoder(vae), torch.rand(batch, 1, 28, 28), folder / "encoder.onnx", ["image"], ["mean", "logvar"], dynamic)
    doc = {
        "name": "MLP VAE (pytorch/examples)",
        "kind": "vae",
        "encoder": "encoder.onnx",
        "output_range": [0, 1],
        "dataset": "shapes",
    }
    (folder / "decoder.json").write_text(json.dumps(doc if sidecar is None else sidecar))
    return folder / "decoder.onnx"


# --- hand-made graphs ------------------------------------------------------------------------------------
def graph_model(nodes, inputs, outputs, initializers=(), opset: int = 18, domain_opsets=()):
    """An onnx ModelProto from helper-made parts (checked by onnx.checker)."""
    from onnx import helper

    graph = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), *domain_opsets])
    model.ir_version = 8
    return model


def linear_decoder(latent: int = 3, side: int = 4, seed: int = 0):
    """z (N, latent) -> sigmoid(z W + b) reshaped to (N, 1, side, side): a minimal valid decoder."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.standard_normal((latent, side * side)).astype(np.float32), "W")
    b = numpy_helper.from_array(np.zeros(side * side, np.float32), "B")
    shape = numpy_helper.from_array(np.array([-1, 1, side, side], np.int64), "shape")
    nodes = [
        helper.make_node("Gemm", ["z", "W", "B"], ["h"]),
        helper.make_node("Sigmoid", ["h"], ["s"]),
        helper.make_node("Reshape", ["s", "shape"], ["image"]),
    ]
    return graph_model(
        nodes,
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", latent])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, side, side])],
        [w, b, shape],
    )
