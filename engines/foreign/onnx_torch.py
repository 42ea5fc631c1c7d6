"""An ONNX graph run by torch operations: differentiable, and on any torch device.

onnxruntime runs a graph fast but gives no gradients, and GAN projection optimises z through the
generator, so the same graph also runs here: one torch function per standard ONNX operator, applied
node by node in the graph's (topological) order. Autograd follows the torch calls, so
`torch.autograd.grad(loss(graph(z)), z)` is exact, not a finite difference.

The operators are those image decoders and encoders are built from (linear and convolutional
layers, normalisations, activations, resampling, shape arithmetic); a graph using any other one is
reported by `unsupported_ops` and then runs in onnxruntime only (no projection). onnx2torch does the
same job but was measured to refuse what torch's own exporter writes today (Reshape with
allowzero=1, from torch.onnx.export's default exporter), so it is not used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor
OpFn = Callable[[list[Any], dict[str, Any]], Any]

_DTYPES = {
    1: torch.float32,
    2: torch.uint8,
    3: torch.int8,
    5: torch.int16,
    6: torch.int32,
    7: torch.int64,
    9: torch.bool,
    10: torch.float16,
    11: torch.float64,
    16: torch.bfloat16,
}


class UnsupportedGraph(ValueError):
    """The graph uses an operator (or an attribute of one) this interpreter does not implement."""


def to_torch(tensor_proto) -> Tensor:
    """A TensorProto (inline data) as a torch tensor."""
    from onnx import numpy_helper

    if tensor_proto.data_type == 16:  # bfloat16: numpy has no native type; go through the raw bits
        bits = (
            np.frombuffer(tensor_proto.raw_data, np.uint16).copy()
            if tensor_proto.raw_data
            else np.asarray(tensor_proto.int32_data, np.uint16)
        )
        return torch.from_numpy(bits.view(np.int16)).view(torch.bfloat16).reshape(tuple(tensor_proto.dims))
    array = numpy_helper.to_array(tensor_proto)
    if tensor_proto.data_type not in _DTYPES:
        raise UnsupportedGraph(f"tensors of ONNX type {tensor_proto.data_type}")
    return torch.from_numpy(np.array(array, copy=True, order="C"))  # (ascontiguousarray would make a scalar 1-D)


def _attrs(node) -> dict[str, Any]:
    from onnx import helper

    out: dict[str, Any] = {}
    for attr in node.attribute:
        value = helper.get_attribute_value(attr)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif attr.type == attr.TENSOR:
            value = to_torch(value)
        elif attr.type in (
            attr.GRAPH,
            attr.GRAPHS,
            attr.SPARSE_TENSOR,
            attr.SPARSE_TENSORS,
            attr.TYPE_PROTO,
            attr.TYPE_PROTOS,
        ):
            raise UnsupportedGraph(f"{node.op_type} with a {attr.name} attribute (subgraphs and sparse tensors)")
        out[attr.name] = value
    return out


# --- helpers -----------------------------------------------------------------------------------------
def _ints(t: Tensor | Sequence[int] | None) -> list[int] | None:
    if t is None:
        return None
    if isinstance(t, Tensor):
        return [int(v) for v in t.reshape(-1).tolist()]
    return [int(v) for v in t]


def _pair(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Bring a CPU shape tensor to the other operand's device (shape arithmetic stays on the CPU)."""
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.device != b.device:
        if a.device.type == "cpu":
            a = a.to(b.device)
        else:
            b = b.to(a.device)
    return a, b


def _binary(fn: Callable[[Tensor, Tensor], Tensor]) -> OpFn:
    return lambda x, a: fn(*_pair(x[0], x[1]))


def _div(x: list[Any], a: dict) -> Tensor:
    p, q = _pair(x[0], x[1])
    if p.is_floating_point():
        return p / q
    return torch.div(p, q, rounding_mode="trunc").to(p.dtype)


def _variadic(fn: Callable[[Tensor, Tensor], Tensor]) -> OpFn:
    def run(x: list[Any], a: dict) -> Tensor:
        out = x[0]
        for t in x[1:]:
            out = fn(*_pair(out, t))
        return out

    return run


def _mean(x: list[Any], a: dict) -> Tensor:
    return _variadic(torch.add)(x, a) / len(x)


def _clip(x: list[Any], a: dict) -> Tensor:
    low = x[1] if len(x) > 1 and x[1] is not None else a.get("min")
    high = x[2] if len(x) > 2 and x[2] is not None else a.get("max")
    out = x[0]
    if low is not None:
        out = torch.maximum(out, torch.as_tensor(low, dtype=out.dtype, device=out.device))
    if high is not None:
        out = torch.minimum(out, torch.as_tensor(high, dtype=out.dtype, device=out.device))
    return out


def _gemm(x: list[Any], a: dict) -> Tensor:
    A, B = x[0], x[1]
    if a.get("transA", 0):
        A = A.transpose(0, 1)
    if a.get("transB", 0):
        B = B.transpose(0, 1)
    out = a.get("alpha", 1.0) * (A @ B)
    if len(x) > 2 and x[2] is not None:
        out = out + a.get("beta", 1.0) * x[2]
    return out


def _cast(x: list[Any], a: dict) -> Tensor:
    to = a["to"]
    if to not in _DTYPES:
        raise UnsupportedGraph(f"Cast to ONNX type {to}")
    return x[0].to(_DTYPES[to])


# --- convolutions and pooling ---------------------------------------------------------------------------
def _same_pads(size: int, kernel: int, stride: int, dilation: int, upper: bool) -> tuple[int, int]:
    out = math.ceil(size / stride)
    total = max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - size)
    small = total // 2
    return (small, total - small) if upper else (total - small, small)


def _conv_pads(
    a: dict, spatial: Sequence[int], kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int]
) -> list[tuple[int, int]]:
    auto = a.get("auto_pad", "NOTSET")
    n = len(spatial)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        return [_same_pads(spatial[i], kernel[i], strides[i], dilations[i], auto == "SAME_UPPER") for i in range(n)]
    if auto == "VALID":
        return [(0, 0)] * n
    pads = list(a.get("pads", [0] * (2 * n)))
    return [(pads[i], pads[i + n]) for i in range(n)]


def _pad_spatial(t: Tensor, pads: list[tuple[int, int]], value: float = 0.0) -> Tensor:
    flat: list[int] = []
    for begin, end in reversed(pads):
        flat += [begin, end]
    return F.pad(t, flat, value=value) if any(flat) else t


_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def _conv(x: list[Any], a: dict) -> Tensor:
    X, W = x[0], x[1]
    B = x[2] if len(x) > 2 else None
    n = X.dim() - 2
    if n not in _CONV:
        raise UnsupportedGraph(f"Conv over {n} dimensions")
    kernel = a.get("kernel_shape", list(W.shape[2:]))
    strides, dilations = a.get("strides", [1] * n), a.get("dilations", [1] * n)
    pads = _conv_pads(a, X.shape[2:], kernel, strides, dilations)
    return _CONV[n](_pad_spatial(X, pads), W, B, strides, 0, dilations, a.get("group", 1))


def _conv_transpose(x: list[Any], a: dict) -> Tensor:
    X, W = x[0], x[1]
    B = x[2] if len(x) > 2 else None
    n = X.dim() - 2
    if n not in _CONV_T:
        raise UnsupportedGraph(f"ConvTranspose over {n} dimensions")
    kernel = a.get("kernel_shape", list(W.shape[2:]))
    strides, dilations = a.get("strides", [1] * n), a.get("dilations", [1] * n)
    out_pad = list(a.get("output_padding", [0] * n))
    sizes = X.shape[2:]
    full = [(sizes[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 + out_pad[i] for i in range(n)]
    auto = a.get("auto_pad", "NOTSET")
    if "output_shape" in a or auto in ("SAME_UPPER", "SAME_LOWER"):
        target = list(a["output_shape"])[-n:] if "output_shape" in a else [sizes[i] * strides[i] for i in range(n)]
        pads = []
        for i in range(n):
            total = full[i] - target[i]
            small = total // 2
            pads.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
    elif auto == "VALID":
        pads = [(0, 0)] * n
    else:
        flat = list(a.get("pads", [0] * (2 * n)))
        pads = [(flat[i], flat[i + n]) for i in range(n)]
    if any(p > 0 and (p >= s and p >= d) for p, s, d in zip(out_pad, strides, dilations)):
        raise UnsupportedGraph("ConvTranspose with output_padding not smaller than its stride or dilation")
    y = _CONV_T[n](X, W, B, strides, 0, out_pad, a.get("group", 1), dilations)
    index = [slice(None), slice(None)] + [slice(b, y.shape[2 + i] - e) for i, (b, e) in enumerate(pads)]
    if any(b < 0 or e < 0 for b, e in pads):
        raise UnsupportedGraph("ConvTranspose with negative padding")
    return y[tuple(index)]


def _pool(kind: str) -> OpFn:
    def run(x: list[Any], a: dict) -> Tensor:
        X = x[0]
        n = X.dim() - 2
        if n not in (1, 2, 3):
            raise UnsupportedGraph(f"{kind} pooling over {n} dimensions")
        kernel = a["kernel_shape"]
        strides, dilations = a.get("strides", [1] * n), a.get("dilations", [1] * n)
        pads = _conv_pads(a, X.shape[2:], kernel, strides, dilations)
        ceil = bool(a.get("ceil_mode", 0))
        if kind == "max":
            padded = _pad_spatial(X, pads, value=-math.inf)
            fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[n]
            return fn(padded, kernel, strides, 0, dilations, ceil_mode=ceil)
        if any(d != 1 for d in dilations):
            raise UnsupportedGraph("AveragePool with dilations")
        fn = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[n]
        if a.get("count_include_pad", 0) or not any(b or e for b, e in pads):
            return fn(_pad_spatial(X, pads), kernel, strides, 0, ceil_mode=ceil)
        ones = torch.ones_like(X[:1, :1])
        total = fn(_pad_spatial(X, pads), kernel, strides, 0, ceil_mode=ceil)
        counts = fn(_pad_spatial(ones, pads), kernel, strides, 0, ceil_mode=ceil)
        return total / counts

    return run


# --- normalisation -------------------------------------------------------------------------------------
def _channel(t: Tensor, rank: int) -> Tensor:
    return t.reshape(1, -1, *([1] * (rank - 2)))


def _batch_norm(x: list[Any], a: dict) -> Tensor:
    if a.get("training_mode", 0):
        raise UnsupportedGraph("BatchNormalization in training mode")
    X, scale, bias, mean, var = x[:5]
    return F.batch_norm(X, mean, var, scale, bias, training=False, eps=a.get("epsilon", 1e-5))


def _instance_norm(x: list[Any], a: dict) -> Tensor:
    return F.instance_norm(x[0], weight=x[1], bias=x[2], eps=a.get("epsilon", 1e-5))


def _layer_norm(x: list[Any], a: dict) -> Tensor:
    X = x[0]
    axis = a.get("axis", -1) % X.dim()
    dims = tuple(range(axis, X.dim()))
    mean = X.mean(dim=dims, keepdim=True)
    var = (X - mean).pow(2).mean(dim=dims, keepdim=True)
    out = (X - mean) / torch.sqrt(var + a.get("epsilon", 1e-5)) * x[1]
    return out + x[2] if len(x) > 2 and x[2] is not None else out


def _group_norm(x: list[Any], a: dict) -> Tensor:
    X, scale, bias = x[0], x[1], x[2]
    groups, channels = a["num_groups"], X.shape[1]
    if scale.numel() != channels:  # opset 18: one scale per group
        scale, bias = scale.repeat_interleave(channels // groups), bias.repeat_interleave(channels // groups)
    return F.group_norm(X, groups, scale, bias, eps=a.get("epsilon", 1e-5))


# --- shapes ------------------------------------------------------------------------------------------
def _reshape(x: list[Any], a: dict) -> Tensor:
    X, shape = x[0], _ints(x[1])
    if not a.get("allowzero", 0):
        shape = [X.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return X.reshape(shape)


def _flatten(x: list[Any], a: dict) -> Tensor:
    X = x[0]
    axis = a.get("axis", 1)
    axis = axis + X.dim() if axis < 0 else axis
    return X.reshape(math.prod(X.shape[:axis]), -1) if X.numel() else X.reshape(math.prod(X.shape[:axis]), 0)


def _axes(x: list[Any], a: dict, index: int = 1) -> list[int] | None:
    if len(x) > index and x[index] is not None:
        return _ints(x[index])
    return a.get("axes")


def _squeeze(x: list[Any], a: dict) -> Tensor:
    X, axes = x[0], _axes(x, a)
    if axes is None:
        return X.squeeze()
    axes = sorted({ax % X.dim() for ax in axes}, reverse=True)
    for ax in axes:
        X = X.squeeze(ax)
    return X


def _unsqueeze(x: list[Any], a: dict) -> Tensor:
    X, axes = x[0], _axes(x, a)
    rank = X.dim() + len(axes)
    for ax in sorted(ax % rank for ax in axes):
        X = X.unsqueeze(ax)
    return X


def _transpose(x: list[Any], a: dict) -> Tensor:
    perm = a.get("perm", list(range(x[0].dim()))[::-1])
    return x[0].permute(perm)


def _concat(x: list[Any], a: dict) -> Tensor:
    parts = [t for t in x if t is not None]
    device = next((t.device for t in parts if t.device.type != "cpu"), parts[0].device)
    return torch.cat([t.to(device) for t in parts], dim=a["axis"])


def _split(x: list[Any], a: dict, outputs: int) -> tuple[Tensor, ...]:
    X = x[0]
    axis = a.get("axis", 0)
    sizes = _ints(x[1]) if len(x) > 1 and x[1] is not None else a.get("split")
    if sizes is None:
        parts = a.get("num_outputs", outputs)
        dim = X.shape[axis]
        sizes = (
            [math.ceil(dim / parts)] * (dim // math.ceil(dim / parts)) if "num_outputs" in a else [dim // parts] * parts
        )
        if sum(sizes) < dim:
            sizes.append(dim - sum(sizes))
    return tuple(torch.split(X, list(sizes), dim=axis))


def _slice(x: list[Any], a: dict) -> Tensor:
    X = x[0]
    if len(x) > 1:
        starts, ends = _ints(x[1]), _ints(x[2])
        axes = _ints(x[3]) if len(x) > 3 and x[3] is not None else list(range(len(starts)))
        steps = _ints(x[4]) if len(x) > 4 and x[4] is not None else [1] * len(starts)
    else:  # opset 1: attributes
        starts, ends = a["starts"], a["ends"]
        axes, steps = a.get("axes", list(range(len(starts)))), [1] * len(starts)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis %= X.dim()
        dim = X.shape[axis]
        start = start + dim if start < 0 else start
        end = end + dim if end < 0 else end
        if step > 0:
            start, end = min(max(start, 0), dim), min(max(end, 0), dim)
            index = [slice(None)] * X.dim()
            index[axis] = slice(start, end, step)
            X = X[tuple(index)]
        elif step < 0:
            start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
            idx = torch.arange(start, end, step, device=X.device)
            X = X.index_select(axis, idx)
        else:
            raise UnsupportedGraph("Slice with a step of 0")
    return X


def _gather(x: list[Any], a: dict) -> Tensor:
    data, idx = x[0], x[1]
    axis = a.get("axis", 0) % data.dim()
    idx = idx.to(device=data.device, dtype=torch.int64)
    idx = torch.where(idx < 0, idx + data.shape[axis], idx)
    out = data.index_select(axis, idx.reshape(-1))
    return out.reshape(*data.shape[:axis], *idx.shape, *data.shape[axis + 1 :])


def _gather_elements(x: list[Any], a: dict) -> Tensor:
    data, idx = x[0], x[1].to(device=x[0].device, dtype=torch.int64)
    axis = a.get("axis", 0) % data.dim()
    idx = torch.where(idx < 0, idx + data.shape[axis], idx)
    return torch.gather(data, axis, idx)


def _shape(x: list[Any], a: dict) -> Tensor:
    dims = list(x[0].shape)
    start, end = a.get("start", 0), a.get("end", len(dims))
    return torch.tensor(dims[start:end], dtype=torch.int64)


def _expand(x: list[Any], a: dict) -> Tensor:
    shape = torch.broadcast_shapes(tuple(x[0].shape), tuple(_ints(x[1])))
    return x[0].expand(shape)


def _constant(x: list[Any], a: dict) -> Tensor:
    if "value" in a:
        return a["value"]
    if "value_float" in a:
        return torch.tensor(a["value_float"], dtype=torch.float32)
    if "value_floats" in a:
        return torch.tensor(a["value_floats"], dtype=torch.float32)
    if "value_int" in a:
        return torch.tensor(a["value_int"], dtype=torch.int64)
    if "value_ints" in a:
        return torch.tensor(a["value_ints"], dtype=torch.int64)
    raise UnsupportedGraph("Constant of a string or sparse value")


def _constant_of_shape(x: list[Any], a: dict) -> Tensor:
    value = a.get("value", torch.zeros(1, dtype=torch.float32))
    return torch.full(tuple(_ints(x[0])), value.reshape(-1)[0].item(), dtype=value.dtype)


def _range(x: list[Any], a: dict) -> Tensor:
    start, limit, delta = (t.item() for t in x[:3])
    return torch.arange(start, limit, delta, dtype=x[0].dtype)


def _pad(x: list[Any], a: dict) -> Tensor:
    X = x[0]
    if len(x) > 1:
        pads = _ints(x[1])
        value = x[2].reshape(-1)[0].item() if len(x) > 2 and x[2] is not None and x[2].numel() else 0.0
        axes = _ints(x[3]) if len(x) > 3 and x[3] is not None else list(range(X.dim()))
    else:
        pads, value, axes = a["pads"], a.get("value", 0.0), list(range(X.dim()))
    axes = [ax % X.dim() for ax in axes]
    n = len(axes)
    per_axis = dict(zip(axes, zip(pads[:n], pads[n:])))
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}.get(
        a.get("mode", "constant")
    )
    if mode is None:
        raise UnsupportedGraph(f"Pad mode {a.get('mode')!r}")
    last = max((ax for ax, p in per_axis.items() if any(p)), default=None)
    if last is None:
        return X
    first = min(ax for ax, p in per_axis.items() if any(p))
    flat: list[int] = []
    for ax in range(X.dim() - 1, first - 1, -1):
        flat += list(per_axis.get(ax, (0, 0)))
    if mode != "constant" and (first < 2 or X.dim() - first > 3):
        raise UnsupportedGraph(f"Pad mode {a.get('mode')!r} outside the last three spatial dimensions")
    return F.pad(X, flat, mode=mode, value=value) if mode == "constant" else F.pad(X, flat, mode=mode)


def _resize(x: list[Any], a: dict, upsample: bool = False) -> Tensor:
    X = x[0]
    spatial = X.dim() - 2
    if upsample:
        scales, sizes = _floats(x[1]) if len(x) > 1 else a.get("scales"), None
        transform, nearest = "asymmetric", "floor"
    else:
        scales = _floats(x[2]) if len(x) > 2 and x[2] is not None and x[2].numel() else None
        sizes = _ints(x[3]) if len(x) > 3 and x[3] is not None else None
        transform = a.get("coordinate_transformation_mode", "half_pixel")
        nearest = a.get("nearest_mode", "round_prefer_floor")
        if a.get("antialias", 0) or a.get("exclude_outside", 0) or "axes" in a:
            raise UnsupportedGraph("Resize with antialias, exclude_outside or axes")
    mode = a.get("mode", "nearest")
    if (
        spatial not in (1, 2, 3)
        or (scales is not None and list(scales[:2]) != [1.0, 1.0])
        or (sizes is not None and list(sizes[:2]) != list(X.shape[:2]))
    ):
        raise UnsupportedGraph("Resize of the batch or channel dimension")
    size = [int(s) for s in sizes[2:]] if sizes is not None else None
    factors = [float(s) for s in scales[2:]] if size is None and scales is not None else None
    if size is None and factors is None:
        raise UnsupportedGraph("Resize without scales or sizes")
    kw: dict[str, Any] = {"size": size} if size is not None else {"scale_factor": factors}
    if mode == "nearest":
        if transform == "asymmetric" and nearest == "floor":
            return F.interpolate(X, mode="nearest", **kw)
        whole = factors is not None and all(f >= 1 and f == int(f) for f in factors)
        if transform in ("half_pixel", "pytorch_half_pixel") and (nearest == "round_prefer_ceil" or whole):
            return F.interpolate(X, mode="nearest-exact", **kw)
    elif mode in ("linear", "cubic"):
        torch_mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[spatial] if mode == "linear" else "bicubic"
        if mode == "cubic" and (spatial != 2 or a.get("cubic_coeff_a", -0.75) != -0.75):
            raise UnsupportedGraph("Resize cubic other than 2-D with a = -0.75")
        if transform in ("half_pixel", "pytorch_half_pixel"):
            return F.interpolate(X, mode=torch_mode, align_corners=False, **kw)
        if transform == "align_corners":
            return F.interpolate(X, mode=torch_mode, align_corners=True, **kw)
    raise UnsupportedGraph(f"Resize mode {mode!r} with {transform!r} coordinates and {nearest!r} rounding")


def _floats(t: Tensor | None) -> list[float] | None:
    return None if t is None else [float(v) for v in t.reshape(-1).tolist()]


def _depth_to_space(x: list[Any], a: dict) -> Tensor:
    X, bs = x[0], a["blocksize"]
    if a.get("mode", "DCR") == "CRD":
        return F.pixel_shuffle(X, bs)
    b, c, h, w = X.shape
    return (
        X.reshape(b, bs, bs, c // (bs * bs), h, w).permute(0, 3, 4, 1, 5, 2).reshape(b, c // (bs * bs), h * bs, w * bs)
    )


def _softmax(fn: Callable[..., Tensor]) -> OpFn:
    def run(x: list[Any], a: dict) -> Tensor:
        X = x[0]
        if a["_opset"] >= 13:
            return fn(X, dim=a.get("axis", -1))
        axis = a.get("axis", 1) % X.dim()  # before opset 13: over the flattened trailing dimensions
        flat = X.reshape(math.prod(X.shape[:axis]), -1)
        return fn(flat, dim=1).reshape(X.shape)

    return run


def _arg(fn: Callable[..., Tensor]) -> OpFn:
    """ArgMax / ArgMin: the first extreme along `axis` (int64), or the last with select_last_index."""

    def run(x: list[Any], a: dict) -> Tensor:
        X, axis, keep = x[0], a.get("axis", 0) % x[0].dim(), bool(a.get("keepdims", 1))
        if not a.get("select_last_index", 0):
            return fn(X, dim=axis, keepdim=keep)
        return X.shape[axis] - 1 - fn(X.flip(axis), dim=axis, keepdim=keep)

    return run


def _reduce(fn: Callable[[Tensor, tuple[int, ...], bool], Tensor], attr_axes_before: int) -> OpFn:
    def run(x: list[Any], a: dict) -> Tensor:
        X = x[0]
        axes = (
            a.get("axes")
            if a["_opset"] < attr_axes_before
            else (_ints(x[1]) if len(x) > 1 and x[1] is not None else None)
        )
        keep = bool(a.get("keepdims", 1))
        if not axes:
            if a.get("noop_with_empty_axes", 0):
                return X
            axes = list(range(X.dim()))
        return fn(X, tuple(ax % X.dim() for ax in axes), keep)

    return run


def _amax(X: Tensor, dims: tuple[int, ...], keep: bool) -> Tensor:
    return X.amax(dim=dims, keepdim=keep)


def _amin(X: Tensor, dims: tuple[int, ...], keep: bool) -> Tensor:
    return X.amin(dim=dims, keepdim=keep)


def _prod(X: Tensor, dims: tuple[int, ...], keep: bool) -> Tensor:
    for d in sorted(dims, reverse=True):
        X = X.prod(dim=d, keepdim=keep)
    return X


def _dropout(x: list[Any], a: dict, outputs: int) -> Any:
    return (x[0], torch.ones_like(x[0], dtype=torch.bool)) if outputs > 1 else x[0]


def _unary(fn: Callable[[Tensor], Tensor]) -> OpFn:
    return lambda x, a: fn(x[0])


def _prelu(x: list[Any], a: dict) -> Tensor:
    X, slope = _pair(x[0], x[1])
    return torch.where(X < 0, X * slope, X)


def _gelu(x: list[Any], a: dict) -> Tensor:
    return F.gelu(x[0], approximate=a.get("approximate", "none"))


def _hard_sigmoid(x: list[Any], a: dict) -> Tensor:
    return (a.get("alpha", 0.2) * x[0] + a.get("beta", 0.5)).clamp(0, 1)


def _selu(x: list[Any], a: dict) -> Tensor:
    alpha, gamma = a.get("alpha", 1.67326319217681884765625), a.get("gamma", 1.05070102214813232421875)
    return gamma * torch.where(x[0] > 0, x[0], alpha * (torch.exp(x[0]) - 1))


def _where(x: list[Any], a: dict) -> Tensor:
    cond, p = _pair(x[0], x[1])
    cond, q = _pair(cond, x[2])
    p, q = _pair(p, q)
    return torch.where(cond.to(p.device), p, q)


OPS: dict[str, OpFn] = {
    "Add": _binary(torch.add),
    "Sub": _binary(torch.sub),
    "Mul": _binary(torch.mul),
    "Div": _div,
    "Pow": _binary(lambda p, q: torch.pow(p, q).to(p.dtype)),
    "MatMul": _binary(torch.matmul),
    "Gemm": _gemm,
    "Min": _variadic(torch.minimum),
    "Max": _variadic(torch.maximum),
    "Sum": _variadic(torch.add),
    "Mean": _mean,
    "Equal": _binary(torch.eq),
    "Less": _binary(torch.lt),
    "LessOrEqual": _binary(torch.le),
    "Greater": _binary(torch.gt),
    "GreaterOrEqual": _binary(torch.ge),
    "And": _binary(torch.logical_and),
    "Or": _binary(torch.logical_or),
    "Xor": _binary(torch.logical_xor),
    "Not": _unary(torch.logical_not),
    "Where": _where,
    "Mod": _binary(torch.fmod),
    "Relu": _unary(torch.relu),
    "Sigmoid": _unary(torch.sigmoid),
    "Tanh": _unary(torch.tanh),
    "Exp": _unary(torch.exp),
    "Log": _unary(torch.log),
    "Sqrt": _unary(torch.sqrt),
    "Neg": _unary(torch.neg),
    "Abs": _unary(torch.abs),
    "Erf": _unary(torch.erf),
    "Reciprocal": _unary(torch.reciprocal),
    "Floor": _unary(torch.floor),
    "Ceil": _unary(torch.ceil),
    "Round": _unary(torch.round),
    "Sign": _unary(torch.sign),
    "Sin": _unary(torch.sin),
    "Cos": _unary(torch.cos),
    "Softplus": _unary(F.softplus),
    "Softsign": _unary(F.softsign),
    "Mish": _unary(F.mish),
    "HardSwish": _unary(F.hardswish),
    "IsNaN": _unary(torch.isnan),
    "IsInf": _unary(torch.isinf),
    "Identity": _unary(lambda t: t),
    "LeakyRelu": lambda x, a: F.leaky_relu(x[0], a.get("alpha", 0.01)),
    "Elu": lambda x, a: F.elu(x[0], a.get("alpha", 1.0)),
    "Celu": lambda x, a: F.celu(x[0], a.get("alpha", 1.0)),
    "ThresholdedRelu": lambda x, a: torch.where(x[0] > a.get("alpha", 1.0), x[0], torch.zeros_like(x[0])),
    "Selu": _selu,
    "HardSigmoid": _hard_sigmoid,
    "Gelu": _gelu,
    "PRelu": _prelu,
    "Clip": _clip,
    "Cast": _cast,
    "CastLike": lambda x, a: x[0].to(x[1].dtype),
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _pool("max"),
    "AveragePool": _pool("average"),
    "GlobalAveragePool": lambda x, a: x[0].mean(dim=tuple(range(2, x[0].dim())), keepdim=True),
    "GlobalMaxPool": lambda x, a: x[0].amax(dim=tuple(range(2, x[0].dim())), keepdim=True),
    "BatchNormalization": _batch_norm,
    "InstanceNormalization": _instance_norm,
    "LayerNormalization": _layer_norm,
    "GroupNormalization": _group_norm,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Transpose": _transpose,
    "Concat": _concat,
    "Slice": _slice,
    "Gather": _gather,
    "GatherElements": _gather_elements,
    "Shape": _shape,
    "Size": lambda x, a: torch.tensor(x[0].numel(), dtype=torch.int64),
    "Expand": _expand,
    "Tile": lambda x, a: x[0].repeat(_ints(x[1])),
    "Constant": _constant,
    "ConstantOfShape": _constant_of_shape,
    "Range": _range,
    "Pad": _pad,
    "Resize": _resize,
    "Upsample": lambda x, a: _resize(x, a, upsample=True),
    "DepthToSpace": _depth_to_space,
    "Softmax": _softmax(torch.softmax),
    "LogSoftmax": _softmax(torch.log_softmax),
    "ReduceMean": _reduce(lambda X, d, k: X.mean(dim=d, keepdim=k), 18),
    "ReduceSum": _reduce(lambda X, d, k: X.sum(dim=d, keepdim=k), 13),
    "ReduceMax": _reduce(_amax, 18),
    "ArgMax": _arg(torch.argmax),
    "ArgMin": _arg(torch.argmin),
    "ReduceMin": _reduce(_amin, 18),
    "ReduceProd": _reduce(_prod, 18),
    "ReduceSumSquare": _reduce(lambda X, d, k: X.pow(2).sum(dim=d, keepdim=k), 18),
    "ReduceL2": _reduce(lambda X, d, k: X.pow(2).sum(dim=d, keepdim=k).sqrt(), 18),
    "Einsum": lambda x, a: torch.einsum(a["equation"], *x),
}
MULTI_OUTPUT = {"Split": _split, "Dropout": _dropout}


def unsupported_ops(model) -> list[str]:
    """The operator types of the graph (a validated ModelProto) that TorchGraph cannot run, sorted."""
    known = OPS.keys() | MULTI_OUTPUT.keys()
    return sorted({n.op_type for n in model.graph.node if n.op_type not in known})


class TorchGraph(nn.Module):
    """A validated ONNX ModelProto as a torch module: forward(*inputs) -> tuple of outputs.

    Floating-point initialisers are frozen parameters (they move with .to(device), take no
    gradients); integer ones (shape arithmetic) stay on the CPU. Raises UnsupportedGraph for a graph
    with an operator or attribute outside OPS.
    """

    def __init__(self, model) -> None:
        super().__init__()
        missing = unsupported_ops(model)
        if missing:
            raise UnsupportedGraph(f"operators not run in torch: {', '.join(missing)}")
        graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.weights = nn.ParameterList()
        self._slots: dict[str, int] = {}
        self._fixed: dict[str, Tensor] = {}  # integer and boolean constants (CPU)
        for init in graph.initializer:
            value = to_torch(init)
            if value.is_floating_point():
                self._slots[init.name] = len(self.weights)
                self.weights.append(nn.Parameter(value, requires_grad=False))
            else:
                self._fixed[init.name] = value
        weights = set(self._slots) | set(self._fixed)
        self.inputs = [i.name for i in graph.input if i.name not in weights]
        self.outputs = [o.name for o in graph.output]
        self.nodes: list[tuple[str, list[str], list[str], dict[str, Any]]] = []
        for node in graph.node:
            attrs = _attrs(node)
            attrs["_opset"] = self.opset
            self.nodes.append((node.op_type, list(node.input), list(node.output), attrs))
        self._move_constant_attrs(torch.device("cpu"))

    def _move_constant_attrs(self, device: torch.device) -> None:
        for op, _inputs, _outputs, attrs in self.nodes:
            if op == "Constant" and isinstance(attrs.get("value"), Tensor) and attrs["value"].is_floating_point():
                attrs["value"] = attrs["value"].to(device)

    def _apply(self, fn, recurse: bool = True):
        out = super()._apply(fn, recurse)
        if len(self.weights):
            self._move_constant_attrs(self.weights[0].device)
        return out

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        env: dict[str, Any] = dict(zip(self.inputs, inputs))
        env.update(self._fixed)
        for name, slot in self._slots.items():
            env[name] = self.weights[slot]
        for op, ins, outs, attrs in self.nodes:
            args = [env[name] if name else None for name in ins]
            if op in MULTI_OUTPUT:
                result = MULTI_OUTPUT[op](args, attrs, len(outs))
                result = result if isinstance(result, tuple) else (result,)
            else:
                result = (OPS[op](args, attrs),)
            for name, value in zip(outs, result):
                if name:
                    env[name] = value
        return tuple(env[name] for name in self.outputs)
