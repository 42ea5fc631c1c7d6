"""`python -m benchmarks [--quick] [--only NAME ...] [--threads N] [--write]`: run every benchmark,
each in its own process, and print one Markdown table headed by the machine it ran on.

`--write` also writes the table into benchmarks/RESULTS.md (between its BEGIN/END markers, keeping
the notes around them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import REPO, Row, default_threads, find_models, is_bundled, machine, set_threads, table

MODULES = ("slider", "maps", "onnx", "pixelcnn", "training", "stall", "startup", "perform", "nearest")
RESULTS = Path(__file__).with_name("RESULTS.md")
BEGIN, END = "<!-- BEGIN BENCHMARK TABLE -->", "<!-- END BENCHMARK TABLE -->"


def header(info: dict[str, str], quick: bool, models: str) -> str:
    return (
        f"Machine: {info['cpu']}, {info['cores']} cores, load average {info['load']} (1/5/15 min) at the start; "
        f"GPU: {info['gpu']}. Python {info['python']}, torch {info['torch']} ({info['threads']} intra-op "
        f"thread{'s' if info['threads'] != '1' else ''}), PySide6 {info['pyside6']}, Qt offscreen. "
        f"Models: {models}. Mode: {'--quick' if quick else 'full'}."
    )


def run_module(name: str, folder: Path, quick: bool, threads: int) -> tuple[list[Row], float, str]:
    out = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".json")[1])
    cmd = [
        sys.executable,
        "-m",
        f"benchmarks.{name}",
        "--models",
        str(folder),
        "--json",
        str(out),
        "--threads",
        str(threads),
    ] + (["--quick"] if quick else [])
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            return [Row(name, "failed", tail[0], "", "")], seconds, tail[0]
        return [Row(**r) for r in json.loads(out.read_text())], seconds, ""
    finally:
        out.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions (all in about 6 minutes on a 2-core CPU)"
    )
    parser.add_argument("--only", nargs="+", choices=MODULES, help="run only these")
    parser.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        help="torch intra-op threads in every benchmark (0: torch's default); default %(default)s",
    )
    parser.add_argument(
        "--models",
        type=Path,
        help="folder of checkpoints (default: the bundled ones, plus untrained models of the configurations they lack)",
    )
    parser.add_argument("--write", action="store_true", help=f"also write the table into {RESULTS.name}")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    info = machine()
    paths = find_models(args.models)
    folder = next(iter(paths.values())).parent
    models = ", ".join(f"{name} ({'bundled' if is_bundled(p) else 'untrained'})" for name, p in paths.items())
    rows, timings = [], []
    for name in args.only or MODULES:
        print(f"running benchmarks.{name}…", file=sys.stderr, flush=True)
        module_rows, seconds, error = run_module(name, folder, args.quick, args.threads)
        rows += module_rows
        timings.append(f"{name} {seconds:.0f} s")
        if error:
            print(f"benchmarks.{name} failed: {error}", file=sys.stderr)
    text = "\n".join(
        [
            header(info, args.quick, models),
            "",
            table(rows),
            "",
            f"Wall time per benchmark process: {', '.join(timings)}.",
        ]
    )
    print(text)
    if args.write:
        write_results(text)
    return 0 if all(r.case != "failed" for r in rows) else 1


def write_results(text: str) -> None:
    block = f"{BEGIN}\n{text}\n{END}"
    old = RESULTS.read_text() if RESULTS.is_file() else f"## Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + block + old[old.index(END) + len(END) :]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(new)


if __name__ == "__main__":
    raise SystemExit(main())
