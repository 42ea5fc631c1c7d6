"""Reading an ONNX file without trusting it.

An ONNX model is a protobuf (a ModelProto): data, not code. What a hostile file can still do is
name files outside its folder as "external data", declare tensors of terabytes, or call operators
from a custom library. `read_onnx` refuses all of that before anything is allocated or run:

- The file is at most MAX_FILE_BYTES and parses as a ModelProto with a graph of nodes and a
  default-domain opset: a positive parse, not the suffix (random bytes, a truncated file or another
  format with a .onnx name are refused with one line).
- Every node (in subgraphs and model-local functions too) is in the standard domain ("" or
  "ai.onnx"): no custom or contrib operators, and no custom-op library is ever registered.
- External data is read here and only here: each location must be a plain relative path inside the
  model's folder (no absolute path, no "..", no symlink leading out), its offset and length inside
  that file, and its length what the tensor's shape declares. The bytes are copied into the model,
  so neither onnx nor onnxruntime ever opens another file.
- Each declared tensor (initialisers, constants, graph inputs/outputs, value_info, and what shape
  inference derives) is bounded: MAX_TENSOR_ELEMENTS elements per tensor, MAX_WEIGHT_BYTES in all.

Every refusal raises OnnxError (a CheckpointError) with a one-line reason.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from ..checkpoint import CheckpointError

log = logging.getLogger(__name__)

SUFFIX = ".onnx"
MAX_FILE_BYTES = 2**31 - 1  # protobuf's own limit on one serialised message
# Initialisers and constants, inline and external, in all: the model is handed to onnxruntime as one
# serialised message, and protobuf caps one at 2 GiB.
MAX_WEIGHT_BYTES = 2**31 - 1
MAX_TENSOR_ELEMENTS = 2**28  # any one declared or inferred tensor (per image, where the batch is symbolic)
STANDARD_DOMAINS = ("", "ai.onnx")
MAX_NODES = 1_000_000


class OnnxError(CheckpointError):
    """An ONNX file (or its sidecar) cannot be opened; the message is one line, fit to show a user."""


@dataclass
class OnnxFile:
    """A validated ONNX model: every tensor's bytes inline, every operator standard."""

    path: Path
    model: Any  # onnx.ModelProto
    files: list[Path] = field(default_factory=list)  # the .onnx file, then each external-data file read
    weight_bytes: int = 0


def _onnx():
    try:
        import onnx
    except ImportError as error:  # a dependency of the project; only a broken install lacks it
        raise OnnxError(f"opening ONNX models needs the onnx package ({error})") from error
    return onnx


def parse_model(data: bytes, name: str):
    """The ModelProto in `data`, or OnnxError when the bytes are not an ONNX model (a positive test:
    the protobuf parses, and holds a graph with nodes, inputs, outputs and a default-domain opset)."""
    onnx = _onnx()
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as error:  # noqa: BLE001 - protobuf's DecodeError and friends: not ONNX
        raise OnnxError(
            f"{name} is not an ONNX model (its bytes do not parse as one: truncated, corrupted or another format)"
        ) from error
    opsets = {o.domain: o.version for o in model.opset_import}
    if (
        model.ir_version < 3
        or not model.HasField("graph")
        or not model.graph.node
        or not model.graph.input
        or not model.graph.output
        or not any(d in STANDARD_DOMAINS for d in opsets)
    ):
        raise OnnxError(
            f"{name} is not an ONNX model (no graph of operators with inputs and outputs: truncated, "
            "corrupted or another format)"
        )
    return model


def looks_like_onnx(path: Path) -> bool:
    """True when the file parses as an ONNX model (see parse_model); reads at most MAX_FILE_BYTES."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return False
        parse_model(path.read_bytes(), path.name)
    except (OSError, OnnxError):
        return False
    return True


def _subgraphs(node) -> Iterator[Any]:
    for attr in node.attribute:
        if attr.HasField("g"):
            yield attr.g
        yield from attr.graphs


def _walk_nodes(graph) -> Iterator[Any]:
    """Every node of a graph, its subgraphs' (If/Loop/Scan bodies) included."""
    for node in graph.node:
        yield node
        for sub in _subgraphs(node):
            yield from _walk_nodes(sub)


def _walk_graphs(graph) -> Iterator[Any]:
    yield graph
    for node in graph.node:
        for sub in _subgraphs(node):
            yield from _walk_graphs(sub)


def _tensors(model) -> Iterator[Any]:
    """Every TensorProto the model holds: initialisers, sparse initialisers' parts, constant attributes."""
    graphs = list(_walk_graphs(model.graph))
    for function in model.functions:
        for node in function.node:
            for sub in _subgraphs(node):
                graphs += list(_walk_graphs(sub))
    for graph in graphs:
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
    nodes = [n for g in graphs for n in g.node] + [n for f in model.functions for n in f.node]
    for node in nodes:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices


def _check_domains(model, name: str) -> None:
    onnx = _onnx()
    local = {(f.domain, f.name) for f in model.functions}
    for f in model.functions:
        for node in f.node:
            if node.domain not in STANDARD_DOMAINS:
                raise OnnxError(
                    f"{name} uses the non-standard operator {node.domain}.{node.op_type} (in the local "
                    f"function {f.name}); only standard ONNX operators are run"
                )
    for node in _walk_nodes(model.graph):
        if node.domain not in STANDARD_DOMAINS and (node.domain, node.op_type) not in local:
            raise OnnxError(
                f"{name} uses the non-standard operator {node.domain}.{node.op_type}; only standard ONNX "
                "operators are run (custom-op libraries are never loaded)"
            )
    count = sum(1 for _ in _walk_nodes(model.graph))
    if count > MAX_NODES:
        raise OnnxError(f"{name} has {count:,} operators (at most {MAX_NODES:,})")
    del onnx


def _dims_elements(dims, what: str, name: str) -> int:
    total = 1
    for d in dims:
        if d < 0:
            raise OnnxError(f"{name}: {what} declares a negative size {d}")
        total *= d
        if total > MAX_TENSOR_ELEMENTS:
            raise OnnxError(f"{name}: {what} declares {_shape(dims)}, more than {MAX_TENSOR_ELEMENTS:,} elements")
    return total


def _shape(dims) -> str:
    text = "x".join(str(d) for d in list(dims)[:8])
    return f"a {text}{'x...' if len(dims) > 8 else ''} tensor"


def _itemsize(data_type: int, what: str, name: str) -> int:
    onnx = _onnx()
    if data_type == onnx.TensorProto.STRING or data_type == onnx.TensorProto.UNDEFINED:
        raise OnnxError(f"{name}: {what} holds strings or an undefined type, which image models do not use")
    try:
        return onnx.helper.tensor_dtype_to_np_dtype(data_type).itemsize
    except (KeyError, ValueError, TypeError) as error:
        raise OnnxError(f"{name}: {what} has an unknown element type {data_type}") from error


def _inline_size(tensor) -> int | None:
    """Bytes of data stored inline (raw or typed fields), counted without decoding."""
    if tensor.HasField("raw_data"):
        return len(tensor.raw_data)
    return None


def _typed_count(tensor) -> int:
    """Values stored in a tensor's typed fields (float_data, int64_data, ...); complex types use two each."""
    count = (
        len(tensor.float_data)
        + len(tensor.int32_data)
        + len(tensor.int64_data)
        + len(tensor.double_data)
        + len(tensor.uint64_data)
        + len(tensor.string_data)
    )
    return count // 2 if tensor.data_type in (14, 15) else count  # COMPLEX64, COMPLEX128


def _external_target(location: str, folder: Path, name: str, tensor_name: str) -> Path:
    """The external-data file `location` names, refused unless it is a plain relative path inside `folder`."""
    if not location or "\x00" in location:
        raise OnnxError(f"{name}: the tensor {tensor_name!r:.60} names no external-data file")
    posix, windows = PurePosixPath(location), PureWindowsPath(location)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or location.startswith(("/", "\\")):
        raise OnnxError(
            f"{name}: the tensor {tensor_name!r:.60} reads its data from the absolute path "
            f"{location!r:.80}; external data must lie in the model's folder"
        )
    if ".." in posix.parts or ".." in windows.parts:
        raise OnnxError(
            f"{name}: the tensor {tensor_name!r:.60} reads its data from {location!r:.80}, outside the "
            "model's folder ('..' is refused)"
        )
    target = folder / location
    try:
        resolved = target.resolve(strict=True)
    except (OSError, RuntimeError) as error:
        raise OnnxError(
            f"{name}: the external-data file {location!r:.80} of the tensor {tensor_name!r:.60} is missing"
        ) from error
    if not resolved.is_relative_to(folder.resolve()):
        raise OnnxError(
            f"{name}: the external-data file {location!r:.80} leads outside the model's folder (a link); refused"
        )
    if not resolved.is_file():
        raise OnnxError(f"{name}: the external data {location!r:.80} is not a file")
    return resolved


def _load_external(tensor, folder: Path, name: str, expected: int, files: list[Path]) -> int:
    """Check a tensor's external-data reference, read its bytes into raw_data; returns the byte count."""
    onnx = _onnx()
    info = {entry.key: entry.value for entry in tensor.external_data}
    unknown = set(info) - {"location", "offset", "length", "checksum", "basepath"}
    if unknown:
        raise OnnxError(f"{name}: the tensor {tensor.name!r:.60} has unknown external-data keys {sorted(unknown)}")
    if info.get("basepath"):
        raise OnnxError(f"{name}: the tensor {tensor.name!r:.60} sets an external-data basepath; refused")
    target = _external_target(info.get("location", ""), folder, name, tensor.name)
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else None
    except ValueError as error:
        raise OnnxError(
            f"{name}: the tensor {tensor.name!r:.60} has a malformed external-data offset or length"
        ) from error
    size = target.stat().st_size
    if length is None:
        length = expected
    if offset < 0 or length != expected or offset + length > size:
        raise OnnxError(
            f"{name}: the external data of the tensor {tensor.name!r:.60} does not fit: {length} bytes "
            f"at offset {offset} of a {size}-byte file, for a tensor of {expected} bytes"
        )
    with open(target, "rb") as f:
        f.seek(offset)
        data = f.read(length)
    if len(data) != length:
        raise OnnxError(f"{name}: the external-data file {target.name} is truncated")
    tensor.raw_data = data
    del tensor.external_data[:]
    tensor.data_location = onnx.TensorProto.DEFAULT
    if target not in files:
        files.append(target)
    return length


def _check_tensors(model, path: Path, files: list[Path]) -> int:
    """Bound every stored tensor and read external data (see the module docstring); returns the bytes in all."""
    onnx = _onnx()
    name, folder, total = path.name, path.parent, 0
    for tensor in _tensors(model):
        what = f"the tensor {tensor.name!r:.60}" if tensor.name else "a constant"
        elements = _dims_elements(tensor.dims, what, name)
        itemsize = _itemsize(tensor.data_type, what, name)
        expected = elements * itemsize
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            total += _load_external(tensor, folder, name, expected, files)
        else:
            inline = _inline_size(tensor)
            if inline is not None and inline != expected:
                raise OnnxError(
                    f"{name}: {what} declares {_shape(tensor.dims)} ({expected:,} bytes) but holds {inline:,} bytes"
                )
            typed = _typed_count(tensor)
            if inline is None and typed != elements:
                raise OnnxError(
                    f"{name}: {what} declares {_shape(tensor.dims)} ({elements:,} values) but holds {typed:,}"
                )
            total += expected
        if total > MAX_WEIGHT_BYTES:
            raise OnnxError(f"{name}: its weights exceed 2 GiB, the most one ONNX model can hand to onnxruntime here")
    return total


def _check_value_infos(model, name: str, inferred: bool = False) -> None:
    """Declared (or inferred) shapes of inputs, outputs and intermediate values: each bounded (symbolic
    dims count as 1)."""
    graph = model.graph
    what = "the value {!r:.60}" + (" (by shape inference)" if inferred else "")
    for info in [*graph.input, *graph.output, *graph.value_info]:
        if not info.type.HasField("tensor_type"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in info.type.tensor_type.shape.dim]
        if any(d < 0 for d in dims):
            raise OnnxError(f"{name}: the value {info.name!r:.60} declares a negative size")
        _dims_elements(dims, what.format(info.name), name)


def _check_inferred(model, name: str) -> None:
    """Shapes that ONNX shape inference derives (with constant folding of shape arithmetic), bounded like
    declared ones, so a graph whose small weights expand to a huge tensor is refused before it runs."""
    onnx = _onnx()
    try:
        inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception as error:  # noqa: BLE001 - inference is a best-effort check; the run is bounded too
        log.info("%s: shape inference failed (%s); declared shapes only", name, error)
        return
    _check_value_infos(inferred, name, inferred=True)


def read_onnx(path: str | os.PathLike, role: str = "model") -> OnnxFile:
    """Read and validate an ONNX file (see the module docstring). Raises OnnxError."""
    onnx = _onnx()
    path = Path(path)
    if not path.is_file():
        raise OnnxError(f"no ONNX {role} at {path}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise OnnxError(
            f"{path.name} is {size / 2**30:.1f} GiB; an ONNX file holds at most 2 GiB (larger weights "
            "belong in external data)"
        )
    with open(path, "rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    model = parse_model(data, path.name)
    del data
    _check_domains(model, path.name)
    files = [path]
    weight_bytes = _check_tensors(model, path, files)
    _check_value_infos(model, path.name)
    if model.functions:
        try:
            model = onnx.inliner.inline_local_functions(model)
        except Exception as error:  # noqa: BLE001
            raise OnnxError(f"{path.name}: its local functions cannot be inlined ({error!s:.100})") from error
    try:
        onnx.checker.check_model(model)
    except Exception as error:  # noqa: BLE001 - ValidationError and C++ errors alike
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OnnxError(f"{path.name} is not a valid ONNX model ({first[:160]})") from error
    _check_inferred(model, path.name)
    return OnnxFile(path, model, files, weight_bytes)


def tensor_shape(info) -> list[int | str | None]:
    """The declared shape of a graph input/output: ints, symbolic names, or None where unknown."""
    if not info.type.HasField("tensor_type") or not info.type.tensor_type.HasField("shape"):
        return []
    out: list[int | str | None] = []
    for d in info.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(None)
    return out


def elem_type(info) -> int:
    return info.type.tensor_type.elem_type if info.type.HasField("tensor_type") else 0


def graph_inputs(model) -> list[Any]:
    """The graph's real inputs (older exports list initialisers among the inputs too)."""
    weights = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in weights]


def numel(shape) -> int:
    return math.prod(d for d in shape if isinstance(d, int))
