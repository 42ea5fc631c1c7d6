"""Property-based fuzzing of the checkpoint loader (run by tests/test_checkpoint_fuzz.py in a process
of its own, so that its peak memory can be measured; also runnable by hand):

    python -m tests.checkpoint_fuzz --examples 2000

Each example writes a real checkpoint of a tiny model with metadata padded to a random length (so
the safetensors header length takes every value its low byte can have, 0x80 included), then maybe mutates
it: one metadata field set to a hostile value or removed, or random bytes flipped, the file
truncated or extended. The properties:
- an unmutated file always opens, with the weights it was written with;
- any other file either opens or raises CheckpointError, never anything else;
- a file that opens after a byte mutation has bit-identical weights (no silent corruption), and a
  mutation inside the tensor bytes is always refused (the stored SHA-256).
Prints one JSON line: examples tried, opened, refused, and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save as safetensors_bytes

from engines.checkpoint import META_KEY, CheckpointError, load_checkpoint, save_checkpoint
from engines.models import build_model
from tests.helpers import TINY

MODELS = {kind: build_model(kind, TINY[kind]).eval() for kind in TINY}

# Values a lying file may hold anywhere: absurd sizes, wrong types, non-finite numbers, deep nesting.
HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63),
    st.sampled_from([0, -1, 1, 2**31, 10**12, 25088000000000]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(-5, 10**9), max_size=5),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
)
# Where to put it: every key the loader or the app reads.
FIELDS = [
    ("format",),
    ("kind",),
    ("config",),
    ("image_shape",),
    ("dataset",),
    ("dataset", "name"),
    ("dataset", "image_size"),
    ("label_names",),
    ("training",),
    ("training", "step"),
    ("training", "history"),
    ("training", "train_config"),
    ("metrics",),
    ("vectors",),
    ("sample",),
    ("content_sha256",),
    ("train_state",),
    ("train_state", "step"),
    ("train_state", "optimizers"),
    ("train_state", "rng"),
    *[
        ("config", name)
        for name in (
            "image_size",
            "channels",
            "latent_dim",
            "width",
            "fc_dim",
            "beta",
            "likelihood",
            "g_width",
            "d_width",
            "loss",
            "d_steps",
            "levels",
            "hidden",
            "n_layers",
            "kernel",
            "first_kernel",
            "w_dim",
            "mapping_layers",
            "g_max",
            "r1_every",
            "mixing_prob",
            "unknown_key",
        )
    ],
]
MUTATIONS = st.one_of(
    st.just(("none",)),
    st.tuples(st.just("meta"), st.sampled_from(FIELDS), st.one_of(st.just("<delete>"), HOSTILE)),
    st.tuples(
        st.just("bytes"),
        st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=4),
    ),
    st.tuples(st.just("truncate"), st.floats(0, 1, exclude_max=True)),
    st.tuples(st.just("append"), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("not-json"), st.binary(max_size=40)),
)


def _write(path: Path, kind: str, pad: int, resumable: bool) -> dict[str, torch.Tensor]:
    model = MODELS[kind]
    train_state = None
    if resumable:
        optimizer = torch.optim.Adam(model.parameters())
        train_state = {
            "step": 3,
            "optimizers": {"main": optimizer.state_dict()},
            "rng": {"torch": torch.get_rng_state()},
        }
    save_checkpoint(
        path,
        model,
        dataset={"name": "shapes"},
        metrics={"pad": "x" * pad},
        training={"step": 3},
        train_state=train_state,
    )
    return model.state_dict()


def _set(meta: dict[str, Any], where: tuple[str, ...], value: Any) -> None:
    node = meta
    for key in where[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if value == "<delete>":
        node.pop(where[-1], None)
    else:
        node[where[-1]] = value


def _rewrite_metadata(path: Path, mutate) -> None:
    """Write the file again with the same tensors and the metadata changed by `mutate(meta_text)`."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta_text = f.metadata()[META_KEY]
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    path.write_bytes(safetensors_bytes(tensors, metadata={META_KEY: mutate(meta_text)}))


def _mutate(path: Path, mutation: tuple) -> str:
    """Apply the mutation; returns which part of the file it touched ("none", "meta", "header", "data", ...)."""
    kind = mutation[0]
    if kind == "meta":
        _, where, value = mutation

        def change(text: str) -> str:
            meta = json.loads(text)
            _set(meta, where, value)
            return json.dumps(meta)  # NaN and Infinity are written as JSON's common extension

        _rewrite_metadata(path, change)
    elif kind == "not-json":
        _rewrite_metadata(path, lambda text: mutation[1].decode("latin-1"))
    elif kind == "bytes":
        original = path.read_bytes()
        data = bytearray(original)
        for where, value in mutation[1]:
            data[int(where * len(data))] = value
        path.write_bytes(bytes(data))
        changed = [i for i in range(len(data)) if data[i] != original[i]]
        data_start = 8 + int.from_bytes(original[:8], "little")
        return "none" if not changed else ("data" if max(changed) >= data_start else "header")
    elif kind == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: int(mutation[1] * len(data))])
    elif kind == "append":
        with open(path, "ab") as f:
            f.write(mutation[1])
    return kind


def run(examples: int) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    folder = Path(tempfile.mkdtemp(prefix="ckpt-fuzz-"))

    def check(kind: str, pad: int, resumable: bool, mutation: tuple) -> None:
        path = folder / "m.safetensors"
        weights = _write(path, kind, pad, resumable)
        touched = _mutate(path, mutation)
        counts["tried"] += 1
        try:
            ckpt = load_checkpoint(path, with_train_state=True)
        except CheckpointError as error:
            assert touched != "none", f"an unmutated file was refused: {error}"
            assert "\n" not in str(error), "the message must be one line"
            counts["refused"] += 1
            counts[f"refused_{touched}"] += 1
            return
        assert touched != "data", "a file whose tensor bytes changed opened"
        counts["opened"] += 1
        counts[f"opened_{touched}"] += 1
        if touched in ("none", "header", "append"):
            for name, tensor in ckpt.model.state_dict().items():
                assert torch.equal(tensor, weights[name]), f"{name} changed but the file opened"

    property_test = settings(
        max_examples=examples, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )(given(st.sampled_from(sorted(MODELS)), st.integers(0, 4096), st.booleans(), MUTATIONS)(check))
    property_test()
    # Every low byte the header length can take (safetensors pads the header to a multiple of 8),
    # 0x80 included, deterministically on top of the random ones.
    first_lengths = set()
    for pad in range(300):
        path = folder / "m.safetensors"
        _write(path, "vae", pad, False)
        first_lengths.add(path.read_bytes()[0])
        load_checkpoint(path)
        counts["tried"] += 1
        counts["opened"] += 1
        counts["opened_none"] += 1
    assert first_lengths == set(range(0, 256, 8)), "the sweep must cover every header-length low byte"
    counts["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # Linux: kB
    return dict(counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=2000)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.examples), sort_keys=True))
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main())
