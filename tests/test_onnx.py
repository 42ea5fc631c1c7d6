"""ONNX models from elsewhere (engines.foreign), without Qt: the torch interpreter against
onnxruntime, hostile files refused with one line (and nothing outside the model's folder read), the
sidecar, the graph layouts a decoder may have, GAN projection through an ONNX generator, and
`export --onnx` of every bundled VAE and GAN within 1e-4 of the checkpoint."""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from engines.checkpoint import CheckpointError, load_checkpoint
from engines.cli import main as cli_main
from engines.foreign.onnx_file import OnnxError
from engines.foreign.onnx_model import OnnxModel
from engines.foreign.onnx_torch import TorchGraph
from engines.images import to_grid
from engines.projection import project_to_latent
from tests.onnx_helpers import Decoder, export, graph_model, linear_decoder, train_mlp_vae

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "checkpoints"


# --- the interpreter against onnxruntime --------------------------------------------------------------
def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _case(op, inputs, attrs=None, outputs=1, inits=None, opset=18, out=None):
    """One node `op` over named inputs (arrays: graph inputs; `inits`: initialisers, e.g. int64 shapes);
    the outputs' element type is `out`, else the last input's that is not boolean."""
    inits = inits or {}
    typed = [a for a in [*inputs.values(), *inits.values()] if a.dtype != np.bool_ and a.size]
    out = out if out is not None else helper.np_dtype_to_tensor_dtype(typed[-1 if op == "Where" else 0].dtype)
    names = list(inputs) + list(inits)
    node = helper.make_node(op, [n if n else "" for n in names], [f"y{i}" for i in range(outputs)], **(attrs or {}))
    graph_inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape) for n, a in inputs.items()
    ]
    graph_outputs = [helper.make_tensor_value_info(f"y{i}", out, None) for i in range(outputs)]
    initializers = [numpy_helper.from_array(a, n) for n, a in inits.items() if n]  # "": an input left out
    return graph_model([node], graph_inputs, graph_outputs, initializers, opset=opset), inputs


def _ties():
    """Rows with tied maxima (and minima): a zero row, and rows whose extreme appears twice."""
    return np.array([[0, 0, 0, 0], [1, 3, 3, -2], [-2, 5, -2, 5]], np.float32)


def _i64(*values):
    return np.array(values, np.int64)


CASES = {
    "conv-asym-pads-groups-dilation": lambda: _case(
        "Conv",
        {"x": _rand(1, 4, 9, 9), "w": _rand(6, 2, 3, 3, seed=1)},
        {"pads": [1, 0, 2, 1], "group": 2, "dilations": [2, 1], "strides": [2, 1]},
        inits={"b": _rand(6, seed=2)},
    ),
    "conv-same-upper": lambda: _case(
        "Conv", {"x": _rand(1, 3, 8, 7), "w": _rand(5, 3, 3, 3, seed=1)}, {"auto_pad": "SAME_UPPER", "strides": [2, 2]}
    ),
    "conv-same-lower": lambda: _case(
        "Conv", {"x": _rand(1, 3, 8, 7), "w": _rand(5, 3, 4, 4, seed=1)}, {"auto_pad": "SAME_LOWER", "strides": [3, 2]}
    ),
    "convt-pads-output-padding": lambda: _case(
        "ConvTranspose",
        {"x": _rand(1, 4, 5, 5), "w": _rand(4, 3, 3, 3, seed=1)},
        {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]},
        inits={"b": _rand(3, seed=2)},
    ),
    "convt-asym-pads": lambda: _case(
        "ConvTranspose",
        {"x": _rand(1, 2, 4, 6), "w": _rand(2, 3, 4, 4, seed=1)},
        {"strides": [2, 2], "pads": [0, 1, 2, 0]},
    ),
    "convt-output-shape": lambda: _case(
        "ConvTranspose",
        {"x": _rand(1, 2, 5, 5), "w": _rand(2, 2, 3, 3, seed=1)},
        {"strides": [2, 2], "output_shape": [10, 10]},
    ),
    "convt-same-upper-groups-dilation": lambda: _case(
        "ConvTranspose",
        {"x": _rand(1, 4, 5, 5), "w": _rand(4, 1, 3, 3, seed=1)},
        {"strides": [2, 2], "auto_pad": "SAME_UPPER", "group": 2},
    ),
    "convt-dilation": lambda: _case(
        "ConvTranspose", {"x": _rand(1, 2, 5, 5), "w": _rand(2, 2, 3, 3, seed=1)}, {"dilations": [2, 2]}
    ),
    "batchnorm": lambda: _case(
        "BatchNormalization",
        {"x": _rand(2, 3, 4, 4)},
        inits={
            "s": _rand(3, seed=1),
            "b": _rand(3, seed=2),
            "m": _rand(3, seed=3),
            "v": np.abs(_rand(3, seed=4)) + 0.5,
        },
    ),
    "instancenorm": lambda: _case(
        "InstanceNormalization", {"x": _rand(2, 3, 4, 5)}, inits={"s": _rand(3, seed=1), "b": _rand(3, seed=2)}
    ),
    "layernorm-last": lambda: _case(
        "LayerNormalization", {"x": _rand(2, 3, 8)}, inits={"s": _rand(8, seed=1), "b": _rand(8, seed=2)}
    ),
    "layernorm-axis1": lambda: _case(
        "LayerNormalization",
        {"x": _rand(2, 3, 4)},
        {"axis": 1},
        inits={"s": _rand(3, 4, seed=1), "b": _rand(3, 4, seed=2)},
    ),
    "groupnorm-21": lambda: _case(
        "GroupNormalization",
        {"x": _rand(2, 4, 3, 3)},
        {"num_groups": 2},
        inits={"s": _rand(4, seed=1), "b": _rand(4, seed=2)},
        opset=21,
    ),
    "resize-nearest-asymmetric": lambda: _case(
        "Resize",
        {"x": _rand(1, 2, 3, 4)},
        {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
        inits={"": np.zeros(0, np.float32), "sc": np.array([1, 1, 2, 3], np.float32)},
    ),
    "resize-nearest-half-pixel-x2": lambda: _case(
        "Resize",
        {"x": _rand(1, 2, 3, 4)},
        {"mode": "nearest"},
        inits={"": np.zeros(0, np.float32), "sc": np.array([1, 1, 2, 2], np.float32)},
    ),
    "resize-nearest-down-ceil": lambda: _case(
        "Resize",
        {"x": _rand(1, 2, 8, 8)},
        {"mode": "nearest", "nearest_mode": "round_prefer_ceil"},
        inits={"": np.zeros(0, np.float32), "sc": np.array([1, 1, 0.5, 0.5], np.float32)},
    ),
    "resize-linear-half-pixel-sizes": lambda: _case(
        "Resize",
        {"x": _rand(1, 2, 5, 4)},
        {"mode": "linear"},
        inits={"r": np.zeros(0, np.float32), "s": np.zeros(0, np.float32), "sz": _i64(1, 2, 9, 7)},
    ),
    "resize-linear-align-corners": lambda: _case(
        "Resize",
        {"x": _rand(1, 2, 5, 4)},
        {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
        inits={"": np.zeros(0, np.float32), "sc": np.array([1, 1, 2, 2], np.float32)},
    ),
    "resize-cubic": lambda: _case(
        "Resize",
        {"x": _rand(1, 1, 5, 5)},
        {"mode": "cubic"},
        inits={"": np.zeros(0, np.float32), "sc": np.array([1, 1, 2, 2], np.float32)},
    ),
    "pad-constant-negative": lambda: _case(
        "Pad", {"x": _rand(1, 2, 4, 4)}, inits={"p": _i64(0, 0, 1, -1, 0, 0, 2, 1), "v": np.array(0.5, np.float32)}
    ),
    "pad-reflect": lambda: _case(
        "Pad", {"x": _rand(1, 2, 4, 4)}, {"mode": "reflect"}, inits={"p": _i64(0, 0, 1, 2, 0, 0, 2, 1)}
    ),
    "pad-edge": lambda: _case(
        "Pad", {"x": _rand(1, 2, 4, 4)}, {"mode": "edge"}, inits={"p": _i64(0, 0, 3, 0, 0, 0, 0, 1)}
    ),
    "slice-negative-steps": lambda: _case(
        "Slice",
        {"x": _rand(3, 7, 5)},
        inits={"st": _i64(-1, 5), "en": _i64(-100, 0), "ax": _i64(1, 2), "sp": _i64(-2, -1)},
    ),
    "slice-clamped": lambda: _case(
        "Slice",
        {"x": _rand(3, 7, 5)},
        inits={"st": _i64(1, -3), "en": _i64(1000, 100), "ax": _i64(0, -1), "sp": _i64(1, 2)},
    ),
    "gather-negative": lambda: _case(
        "Gather", {"x": _rand(3, 5, 2)}, {"axis": 1}, inits={"i": _i64(-1, 0, 2, 2).reshape(2, 2)}
    ),
    "gather-scalar": lambda: _case("Gather", {"x": _rand(4, 3)}, inits={"i": np.array(2, np.int64)}),
    "gather-elements": lambda: _case(
        "GatherElements", {"x": _rand(3, 4)}, {"axis": 1}, inits={"i": _i64(0, -1, 2, 1, 3, 0).reshape(3, 2)}
    ),
    "split-sizes": lambda: _case("Split", {"x": _rand(2, 7)}, {"axis": 1}, outputs=3, inits={"s": _i64(2, 4, 1)}),
    "split-num-outputs": lambda: _case("Split", {"x": _rand(7, 2)}, {"num_outputs": 3}, outputs=3),
    "reshape-zero": lambda: _case("Reshape", {"x": _rand(2, 3, 4)}, inits={"s": _i64(0, -1, 2)}),
    "flatten-2": lambda: _case("Flatten", {"x": _rand(2, 3, 4, 5)}, {"axis": 2}),
    "squeeze-unsqueeze": lambda: _case("Unsqueeze", {"x": _rand(2, 3)}, inits={"a": _i64(0, -1)}),
    "squeeze": lambda: _case("Squeeze", {"x": _rand(1, 3, 1, 2)}, inits={"a": _i64(2)}),
    "transpose": lambda: _case("Transpose", {"x": _rand(2, 3, 4)}, {"perm": [2, 0, 1]}),
    "expand": lambda: _case("Expand", {"x": _rand(3, 1)}, inits={"s": _i64(2, 1, 4)}),
    "tile": lambda: _case("Tile", {"x": _rand(2, 3)}, inits={"r": _i64(2, 3)}),
    "concat": lambda: _case("Concat", {"x": _rand(2, 3), "y": _rand(2, 1, seed=1)}, {"axis": -1}),
    "gemm-trans": lambda: _case(
        "Gemm",
        {"a": _rand(4, 3), "b": _rand(5, 4, seed=1)},
        {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0},
        inits={"c": _rand(5, seed=2)},
    ),
    "matmul-batched": lambda: _case("MatMul", {"a": _rand(2, 3, 4), "b": _rand(4, 5, seed=1)}),
    "depth-to-space-dcr": lambda: _case("DepthToSpace", {"x": _rand(1, 8, 2, 3)}, {"blocksize": 2}),
    "depth-to-space-crd": lambda: _case("DepthToSpace", {"x": _rand(1, 8, 2, 3)}, {"blocksize": 2, "mode": "CRD"}),
    "maxpool-pads-ceil": lambda: _case(
        "MaxPool",
        {"x": _rand(1, 2, 7, 7)},
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 0, 1], "ceil_mode": 1},
    ),
    "avgpool-exclude-pad": lambda: _case(
        "AveragePool", {"x": _rand(1, 2, 6, 6)}, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}
    ),
    "avgpool-include-pad": lambda: _case(
        "AveragePool", {"x": _rand(1, 2, 6, 6)}, {"kernel_shape": [2, 2], "pads": [1, 0, 0, 1], "count_include_pad": 1}
    ),
    "global-average-pool": lambda: _case("GlobalAveragePool", {"x": _rand(2, 3, 4, 5)}),
    "softmax-13": lambda: _case("Softmax", {"x": _rand(2, 3, 4)}, {"axis": 1}),
    "softmax-11-flattens": lambda: _case("Softmax", {"x": _rand(2, 3, 4)}, {"axis": 1}, opset=11),
    "reduce-mean-18": lambda: _case("ReduceMean", {"x": _rand(2, 3, 4)}, {"keepdims": 0}, inits={"a": _i64(-1, 0)}),
    "reduce-sum-13": lambda: _case("ReduceSum", {"x": _rand(2, 3, 4)}, inits={"a": _i64(1)}, opset=13),
    "reduce-max-13": lambda: _case("ReduceMax", {"x": _rand(2, 3, 4)}, {"axes": [2], "keepdims": 0}, opset=13),
    "argmax-ties-first": lambda: _case("ArgMax", {"x": _ties()}, {"axis": 1, "keepdims": 0}, out=TensorProto.INT64),
    "argmax-ties-last": lambda: _case(
        "ArgMax", {"x": _ties()}, {"axis": -1, "select_last_index": 1}, out=TensorProto.INT64
    ),
    "argmin-axis0": lambda: _case("ArgMin", {"x": _rand(3, 4)}, out=TensorProto.INT64),
    "leaky-relu": lambda: _case("LeakyRelu", {"x": _rand(3, 4)}, {"alpha": 0.2}),
    "elu": lambda: _case("Elu", {"x": _rand(3, 4)}, {"alpha": 0.7}),
    "selu": lambda: _case("Selu", {"x": _rand(3, 4)}),
    "hard-sigmoid": lambda: _case("HardSigmoid", {"x": _rand(3, 4)}, {"alpha": 0.3}),
    "hard-swish": lambda: _case("HardSwish", {"x": _rand(3, 4)}),
    "gelu-tanh": lambda: _case("Gelu", {"x": _rand(3, 4)}, {"approximate": "tanh"}, opset=20),
    "prelu": lambda: _case("PRelu", {"x": _rand(2, 3, 2, 2)}, inits={"s": _rand(3, 1, 1, seed=1)}),
    "clip-inputs": lambda: _case(
        "Clip", {"x": _rand(3, 4)}, inits={"lo": np.array(-0.5, np.float32), "hi": np.array(0.3, np.float32)}
    ),
    "softplus": lambda: _case("Softplus", {"x": _rand(3, 4)}),
    "mish": lambda: _case("Mish", {"x": _rand(3, 4)}),
    "erf": lambda: _case("Erf", {"x": _rand(3, 4)}),
    "where": lambda: _case("Where", {"c": _rand(3, 4) > 0, "x": _rand(3, 4, seed=1), "y": _rand(1, 4, seed=2)}),
    "pow": lambda: _case("Pow", {"x": np.abs(_rand(3, 4)) + 0.1}, inits={"e": np.array(1.7, np.float32)}),
    "div-int-truncates": lambda: _case("Div", {"x": _i64(7, -7, 9)}, inits={"y": _i64(2, 2, -4)}),
    "constant-of-shape-range": lambda: _case(
        "ConstantOfShape",
        {},
        {"value": numpy_helper.from_array(np.array([2.5], np.float32))},
        inits={"s": _i64(2, 3)},
        out=TensorProto.FLOAT,
    ),
    "range": lambda: _case(
        "Range",
        {},
        inits={"a": np.array(1.0, np.float32), "b": np.array(4.0, np.float32), "c": np.array(0.75, np.float32)},
    ),
    "cast": lambda: _case("Cast", {"x": _rand(3, 4) * 3}, {"to": TensorProto.INT32}, out=TensorProto.INT32),
    "shape-slice": lambda: _case("Shape", {"x": _rand(2, 3, 4, 5)}, {"start": 1, "end": -1}, out=TensorProto.INT64),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_torch_interpreter_computes_what_onnxruntime_computes(name):
    model, inputs = CASES[name]()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, inputs)
    graph = TorchGraph(model)
    got = graph(*[torch.from_numpy(a) for a in inputs.values()])
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert tuple(g.shape) == e.shape
        np.testing.assert_allclose(g.detach().numpy().astype(e.dtype), e, rtol=1e-5, atol=1e-5)


# --- a plain-PyTorch VAE, exported as a user would --------------------------------------------------------
@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    """The MLP VAE 784-400-20 (pytorch/examples), trained 40 steps, and its decoder + encoder as ONNX."""
    from tests.onnx_helpers import export_mlp_vae

    vae = train_mlp_vae()
    return vae, export_mlp_vae(vae, tmp_path_factory.mktemp("mlp"))


def test_an_exported_plain_pytorch_vae_opens_with_everything_from_the_graph_and_sidecar(mlp):
    vae, path = mlp
    ckpt = load_checkpoint(path)
    model = ckpt.model
    assert isinstance(model, OnnxModel) and ckpt.format == "onnx"
    assert (model.latent_dim, model.image_shape, model.kind) == (20, (1, 28, 28), "vae")
    assert model.has_latent and model.has_encoder and model.can_project and model.encoder_variance
    assert ckpt.dataset["name"] == "shapes" and ckpt.has_labels and "shape" in ckpt.label_names
    # torch.onnx.export keeps the weights beside the graph (decoder.onnx.data): read, and hashed, with it
    assert ckpt.files[0] == path and {path.with_name("decoder.onnx.data"), path.with_name("encoder.onnx")} <= set(
        ckpt.files
    )
    z = torch.randn(300, 20, generator=torch.Generator().manual_seed(1))  # more than one batch of 256
    with torch.no_grad():
        np.testing.assert_allclose(model.decode(z).numpy(), vae.decode(z).numpy(), atol=1e-5)
        images = vae.decode(z[:10])
        for got, want in zip(model.encode(images), vae.encode(images)):
            np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-4)
    # Gradients through the graph (the torch interpreter) are the model's own.
    target = images[:1]
    zg = z[:1].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((model.decode(zg) - target).pow(2).mean(), zg)
    zt = z[:1].clone().requires_grad_(True)
    (want,) = torch.autograd.grad((vae.decode(zt) - target).pow(2).mean(), zt)
    np.testing.assert_allclose(grad.numpy(), want.numpy(), rtol=1e-4, atol=1e-7)


def test_the_readme_example_exports_a_model_that_opens(tmp_path, monkeypatch):
    from tests.onnx_helpers import readme_block

    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # what users copy runs without a warning
        exec(compile(readme_block("tests/test_onnx.py runs this block"), "README.md", "exec"), {"__name__": "readme"})
    ckpt = load_checkpoint(tmp_path / "my-vae.onnx")
    model = ckpt.model
    assert (model.latent_dim, model.image_shape, model.kind, model.display_name) == (
        20,
        (1, 28, 28),
        "vae",
        "My MNIST VAE",
    )
    assert model.has_encoder and model.encoder_variance and model.can_project
    assert ckpt.dataset["name"] == "mnist" and ckpt.label_names[:2] == ["0", "1"]


def test_a_fixed_batch_of_one_works_too(mlp, tmp_path):
    vae, _ = mlp
    from tests.onnx_helpers import export_mlp_vae

    path = export_mlp_vae(vae, tmp_path / "fixed", dynamic=False)
    model = load_checkpoint(path).model
    assert model.decoder_runner.fixed_batch == 1 and model.encoder_runner.fixed_batch == 1
    z = torch.randn(5, 20, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        np.testing.assert_allclose(model.decode(z).numpy(), vae.decode(z).numpy(), atol=1e-5)
        np.testing.assert_allclose(
            model.encode(vae.decode(z))[0].numpy(), vae.encode(vae.decode(z))[0].numpy(), atol=1e-4
        )
    result = project_to_latent(model, vae.decode(z[:1])[0], steps=3, candidates=3)
    assert result.steps == 3 and np.isfinite(result.mse)


def test_sample_writes_the_models_grid(mlp, tmp_path, capsys):
    vae, path = mlp
    out = tmp_path / "grid.png"
    assert cli_main(["sample", str(path), "--n", "16", "--seed", "3", "--scale", "1", "--out", str(out)]) == 0
    from PIL import Image

    with torch.no_grad():
        expected = to_grid(vae.decode(torch.randn((16, 20), generator=torch.Generator().manual_seed(3))))
    written = np.asarray(Image.open(out))
    assert written.shape[:2] == expected.shape[:2]
    assert np.abs(written.astype(int) - expected.reshape(written.shape).astype(int)).max() <= 1


# --- graph layouts and the sidecar -----------------------------------------------------------------------
def test_a_dcgan_style_generator_taking_z_as_n_d_1_1_with_tanh_output(tmp_path):
    from engines.models.gan import GANConfig, build_generator

    generator = build_generator(GANConfig(latent_dim=8, g_width=8)).eval()
    path = export(generator, torch.randn(2, 8, 1, 1), tmp_path / "g.onnx", ["z"], ["x"])
    model = load_checkpoint(path).model
    assert model.latent_dim == 8 and model.image_shape == (1, 28, 28)
    assert model.output_range == (-1.0, 1.0) and "inferred" in model.range_source
    z = torch.randn(4, 8)
    with torch.no_grad():
        expected = (generator(z.reshape(4, 8, 1, 1)) + 1) / 2
        np.testing.assert_allclose(model.decode(z).numpy(), expected.numpy(), atol=1e-5)
        model.set_output_range((0.0, 1.0))  # the user's switch in the Model dock
        np.testing.assert_allclose(model.decode(z).numpy(), expected.numpy() * 2 - 1, atol=1e-5)


@pytest.mark.parametrize("layout", ["mean", "stacked"])
def test_encoders_giving_the_mean_only_or_mean_and_logvar_stacked(tmp_path, layout):
    vae = train_mlp_vae(steps=2)

    class MeanOnly(torch.nn.Module):
        def forward(self, x):
            return vae.encode(x)[0]

    class Stacked(torch.nn.Module):
        def forward(self, x):
            return torch.cat(vae.encode(x), dim=1)

    export(Decoder(vae), torch.randn(2, 20), tmp_path / "d.onnx", ["z"], ["x"])
    export(MeanOnly() if layout == "mean" else Stacked(), torch.rand(2, 1, 28, 28), tmp_path / "e.onnx", ["x"], ["out"])
    (tmp_path / "d.json").write_text(json.dumps({"encoder": "e.onnx"}))
    model = load_checkpoint(tmp_path / "d.onnx").model
    assert model.has_encoder and model.encoder_variance == (layout == "stacked")
    x = torch.rand(3, 1, 28, 28)
    mu, logvar = model.encode(x)
    np.testing.assert_allclose(mu.numpy(), vae.encode(x)[0].detach().numpy(), atol=1e-4)
    if layout == "mean":
        assert not logvar.any()


def _write(path: Path, model) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize(
    "sidecar, words",
    [
        ("{not json", "not valid JSON"),
        ('{"outputRange": [0, 1]}', "unknown key 'outputRange'"),
        ('{"output_range": [0, 255]}', "output_range must be [0, 1] or [-1, 1]"),
        ('{"kind": "diffusion"}', "kind must be"),
        ('{"encoder": "../encoder.onnx"}', "outside the model's folder"),
        ('{"encoder": "/tmp/encoder.onnx"}', "absolute path"),
        ('{"encoder": "missing.onnx"}', "is not there"),
        ('{"latent_dim": 7}', "latent_dim 7, the graph takes 3"),
        ('{"dataset": "mnist"}', "the dataset 'mnist' cannot give the model's 4x4x1 images"),
        ('{"label_names": [1, 2]}', "label_names must be a list of strings"),
    ],
)
def test_a_bad_sidecar_is_one_line(tmp_path, sidecar, words):
    folder = tmp_path / "model"
    folder.mkdir()
    _write(folder / "d.onnx", linear_decoder())
    (folder / "d.json").write_text(sidecar)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(folder / "d.onnx")
    assert words in str(info.value) and "\n" not in str(info.value)


def test_graphs_that_are_not_decoders_are_refused_with_one_line(tmp_path):
    two_inputs = graph_model(
        [helper.make_node("Add", ["a", "b"], ["y"])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 4]) for n in "ab"],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    flat = graph_model(
        [helper.make_node("Relu", ["z"], ["y"])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    for model, words in ((two_inputs, "has 2 inputs"), (flat, "a decoder makes images (N, C, H, W)")):
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(_write(tmp_path / "m.onnx", model))
        assert words in str(info.value) and "\n" not in str(info.value)


def test_an_onnx_file_is_recognised_by_its_content_not_its_name(tmp_path):
    path = _write(tmp_path / "decoder.model", linear_decoder())
    assert load_checkpoint(path).model.latent_dim == 3


# --- hostile files --------------------------------------------------------------------------------------
_opened: list[str] = []


def _audit(event: str, args) -> None:
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        _opened.append(os.fsdecode(args[0]))


@pytest.fixture
def opened_files():
    """Every file Python opens during the test (an audit hook, installed once per process)."""
    if not getattr(sys, "_latent_explorer_audit", False):
        sys.addaudithook(_audit)
        sys._latent_explorer_audit = True
    _opened.clear()
    yield _opened
    _opened.clear()


def _external(folder: Path, location: str) -> Path:
    """A decoder whose weight W reads its bytes from `location` (external data)."""
    model = linear_decoder()
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(3 * 16 * 4))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    return _write(folder / "decoder.onnx", model)


def _custom_domain(folder: Path, domain: str = "com.example.evil") -> Path:
    model = linear_decoder()
    model.graph.node.insert(1, helper.make_node("Steal", ["h"], ["h2"], domain=domain))
    model.graph.node[2].input[0] = "h2"
    model.opset_import.append(helper.make_opsetid(domain, 1))
    return _write(folder / "decoder.onnx", model)


def _huge_initializer(folder: Path) -> Path:
    model = linear_decoder()
    w = model.graph.initializer[0]
    del w.dims[:]
    w.dims.extend([100_000, 100_000])  # 40 GB declared, 192 bytes stored
    return _write(folder / "decoder.onnx", model)


def _short_initializer(folder: Path) -> Path:
    model = linear_decoder()
    w = model.graph.initializer[0]
    del w.dims[:]
    w.dims.extend([3, 1600])  # declares 19,200 bytes, holds 192
    return _write(folder / "decoder.onnx", model)


def _huge_input(folder: Path) -> Path:
    model = linear_decoder()
    dim = model.graph.input[0].type.tensor_type.shape.dim[1]
    dim.dim_value = 10**9
    return _write(folder / "decoder.onnx", model)


def _huge_expansion(folder: Path) -> Path:
    """Tiny weights that expand to 10^10 elements at run time (ConstantOfShape of a constant shape)."""
    model = linear_decoder()
    model.graph.initializer.append(numpy_helper.from_array(np.array([100_000, 100_000], np.int64), "big"))
    model.graph.node.insert(0, helper.make_node("ConstantOfShape", ["big"], ["blob"]))
    model.graph.node.append(helper.make_node("ReduceSum", ["blob"], ["unused"], keepdims=0))
    model.graph.output.append(helper.make_tensor_value_info("unused", TensorProto.FLOAT, []))
    return _write(folder / "decoder.onnx", model)


def _truncated(folder: Path) -> Path:
    data = linear_decoder(latent=8, side=28).SerializeToString()
    return (folder / "decoder.onnx").write_bytes(data[: len(data) // 2]) and folder / "decoder.onnx"


def _random(folder: Path) -> Path:
    (folder / "decoder.onnx").write_bytes(np.random.default_rng(0).bytes(4096))
    return folder / "decoder.onnx"


def _png(folder: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (8, 8)).save(folder / "decoder.onnx", format="PNG")
    return folder / "decoder.onnx"


def _empty(folder: Path) -> Path:
    (folder / "decoder.onnx").write_bytes(b"")
    return folder / "decoder.onnx"


HOSTILE = {
    "external-data-dotdot": (lambda f: _external(f, "../secret.bin"), "outside the model's folder"),
    "external-data-absolute": (lambda f: _external(f, str(f.parent / "secret.bin")), "absolute path"),
    "external-data-symlink-out": (
        lambda f: (os.symlink(f.parent / "secret.bin", f / "w.bin"), _external(f, "w.bin"))[1],
        "leads outside the model's folder",
    ),
    "external-data-past-the-end": (
        lambda f: ((f / "w.bin").write_bytes(b"\0" * 10), _external(f, "w.bin"))[1],
        "does not fit",
    ),
    "custom-op-domain": (_custom_domain, "non-standard operator com.example.evil.Steal"),
    "contrib-op-domain": (lambda f: _custom_domain(f, "com.microsoft"), "non-standard operator com.microsoft.Steal"),
    "huge-initializer": (_huge_initializer, "more than"),
    "initializer-shorter-than-declared": (_short_initializer, "holds 192 bytes"),
    "huge-input": (_huge_input, "more than"),
    "huge-expansion": (_huge_expansion, "more than"),
    "truncated": (_truncated, "ONNX model"),
    "random-bytes": (_random, "is not an ONNX model"),
    "png-named-onnx": (_png, "is not an ONNX model"),
    "empty": (_empty, "is not an ONNX model"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_onnx_files_are_refused_with_one_line_and_nothing_outside_is_read(tmp_path, name, opened_files, capsys):
    make, words = HOSTILE[name]
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\1" * 4096)
    folder = tmp_path / "model"
    folder.mkdir()
    path = make(folder)
    opened_files.clear()
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert words in message and "\n" not in message, message
    assert isinstance(info.value, OnnxError)
    assert str(secret) not in opened_files and not any(
        p.startswith(str(tmp_path)) and not p.startswith(str(folder)) for p in opened_files
    )
    # The command line says the same in one line, exit status 1.
    assert cli_main(["sample", str(path), "--out", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
    assert str(secret) not in opened_files


@pytest.mark.parametrize("kind", ["pickle", "torchscript", "pt2"])
def test_pytorch_files_are_refused_unread_with_the_way_to_export_them(tmp_path, kind, monkeypatch):
    import pickle

    module = torch.nn.Linear(2, 3)
    path = tmp_path / {"pickle": "model.pt", "torchscript": "model.pt", "pt2": "model.pt2"}[kind]
    if kind == "pickle":
        torch.save(module, path)
    elif kind == "torchscript":
        with warnings.catch_warnings():  # torch deprecates scripting; such files still exist and must be refused
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.save(torch.jit.script(module), str(path))
    else:
        torch.export.save(torch.export.export(module, (torch.zeros(1, 2),)), str(path))

    def never(*args, **kwargs):
        raise AssertionError("a pickle was read")

    monkeypatch.setattr(pickle, "load", never)
    monkeypatch.setattr(pickle, "loads", never)
    monkeypatch.setattr(torch, "load", never)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "never opens" in message and "torch.onnx.export(" in message and "plugin" in message
    assert "\n" not in message
    assert {"pickle": "pickle", "torchscript": "TorchScript", "pt2": ".pt2"}[kind] in message


# --- GAN projection through an ONNX generator -----------------------------------------------------------
def test_projection_through_an_onnx_generator_follows_the_generators_own_gradients(gan_checkpoint, tmp_path, capsys):
    assert cli_main(["export", str(gan_checkpoint), "--onnx", str(tmp_path)]) == 0
    native = load_checkpoint(gan_checkpoint).model
    exported = load_checkpoint(tmp_path / f"{gan_checkpoint.stem}.onnx").model
    assert exported.can_project and not exported.has_encoder
    with torch.no_grad():
        target = native.decode(torch.randn((1, native.latent_dim), generator=torch.Generator().manual_seed(5)))[0]
    ours = project_to_latent(native, target, steps=25, seed=1)
    theirs = project_to_latent(exported, target, steps=25, seed=1)
    assert theirs.losses[-1] < theirs.losses[0]
    np.testing.assert_allclose(theirs.losses, ours.losses, rtol=1e-4)
    np.testing.assert_allclose(theirs.z, ours.z, atol=1e-4)


# --- export --onnx ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["vae-mnist-2d", "vae-mnist-32d", "vae-faces", "dcgan-mnist", "dcgan-faces"])
def test_each_bundled_vae_and_gan_exports_to_onnx_within_1e_4(name, tmp_path, capsys):
    source = BUNDLED / f"{name}.safetensors"
    assert cli_main(["export", str(source), "--onnx", str(tmp_path)]) == 0
    assert "within" in capsys.readouterr().out
    native = load_checkpoint(source).model.float()
    ckpt = load_checkpoint(tmp_path / f"{name}.onnx")
    model = ckpt.model
    assert ckpt.dataset == load_checkpoint(source).dataset and model.kind == native.kind
    z = torch.randn((64, native.latent_dim), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        images = native.decode(z)
        assert float((model.decode(z) - images).abs().max()) <= 1e-4
        if native.has_encoder:
            for got, want in zip(model.encode(images[:16]), native.encode(images[:16])):
                assert float((got - want).abs().max()) <= 1e-4
    assert model.has_encoder == native.has_encoder


def test_export_refuses_a_pixelcnn_and_existing_files(tmp_path, capsys, vae_checkpoint):
    assert cli_main(["export", str(BUNDLED / "pixelcnn-mnist.safetensors"), "--onnx", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "Gated PixelCNN" in err and "only VAEs and GANs export to ONNX" in err and len(err.splitlines()) == 1
    assert cli_main(["export", str(vae_checkpoint), "--onnx", str(tmp_path)]) == 0
    capsys.readouterr()
    assert cli_main(["export", str(vae_checkpoint), "--onnx", str(tmp_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli_main(["export", str(vae_checkpoint), "--onnx", str(tmp_path), "--overwrite"]) == 0
    sidecar = json.loads((tmp_path / f"{vae_checkpoint.stem}.json").read_text())
    assert sidecar["encoder"] == f"{vae_checkpoint.stem}-encoder.onnx" and sidecar["output_range"] == [0, 1]
    assert cli_main(["export", str(tmp_path / f"{vae_checkpoint.stem}.onnx"), "--onnx", str(tmp_path / "again")]) == 1
    assert "already an onnx model" in capsys.readouterr().err


MNIST_ROOT = REPO.parent / "shared" / "datasets"  # beside the checkout here and in CI; elsewhere the test skips


def test_eval_of_an_onnx_model_says_what_is_missing_in_one_line(gan_checkpoint, tmp_path, capsys):
    bare = _write(tmp_path / "bare.onnx", linear_decoder(side=28))
    assert cli_main(["eval", str(bare)]) == 1
    err = capsys.readouterr().err.strip()
    assert "bare.onnx names no dataset" in err and '"dataset": "mnist"' in err and len(err.splitlines()) == 1
    assert cli_main(["eval", str(bare), "--save"]) == 2
    assert "--save stores metrics in a .safetensors checkpoint" in capsys.readouterr().err
    assert cli_main(["export", str(gan_checkpoint), "--onnx", str(tmp_path)]) == 0
    capsys.readouterr()
    assert cli_main(["eval", str(tmp_path / f"{gan_checkpoint.stem}.onnx")]) == 1  # a GAN on shapes: no judge
    assert "no classifier for shapes" in capsys.readouterr().err


@pytest.mark.skipif(not (MNIST_ROOT / "MNIST" / "raw").is_dir(), reason=f"needs MNIST under {MNIST_ROOT}")
def test_eval_judges_an_exported_gan_by_the_classifier(tmp_path, capsys):
    assert cli_main(["export", str(BUNDLED / "dcgan-mnist.safetensors"), "--onnx", str(tmp_path)]) == 0
    capsys.readouterr()
    assert (
        cli_main(["eval", str(tmp_path / "dcgan-mnist.onnx"), "--data-root", str(MNIST_ROOT), "--n", "100", "--json"])
        == 0
    )
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["dataset"] == "mnist" and metrics["samples"]["samples"] == 100
    assert 1.0 <= metrics["samples"]["inception_score"] <= 10.0
