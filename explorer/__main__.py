"""`latent-explorer` and `python -m explorer`: the GUI, or the train/eval/sample/export/render commands.

The first argument decides: a command name runs the command line (no Qt is loaded); nothing, an
option, an existing file or a .safetensors/.onnx path opens the app; anything else is an unknown
command (exit status 2, as argparse does for bad arguments).
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

COMMANDS = ("train", "eval", "sample", "export", "render")
CHECKPOINT_SUFFIX = ".safetensors"  # engines.checkpoint.SUFFIX, without importing torch here
MODEL_SUFFIXES = (CHECKPOINT_SUFFIX, ".onnx")  # what the app opens by name alone (plugins' files exist)
GUI_OPTIONS_WITH_VALUE = ("--device",)  # the app's options that take a value (see explorer.app.parse_args)
USAGE = "usage: latent-explorer [MODEL] [--device D]  |  latent-explorer {train,eval,sample,export,render} ..."


def _first_positional(argv: list[str]) -> str | None:
    """The first argument that is not an option of the app (nor an option's value)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--":
            continue
        elif arg.startswith("-") and arg != "-":
            skip = arg in GUI_OPTIONS_WITH_VALUE
        else:
            return arg
    return None


def unknown_command(argv: list[str]) -> str | None:
    """The one-line error for arguments that are neither a command nor something the app opens; else None."""
    first = _first_positional(argv)
    if first is None:
        return None
    if first in COMMANDS:
        return (
            None
            if argv[0] == first
            else f"latent-explorer: error: the command comes first: latent-explorer {first} ..."
        )
    if first.lower().endswith(MODEL_SUFFIXES) or Path(first).exists():
        return None  # a checkpoint to open (a missing or bad one is the app's to report)
    close = difflib.get_close_matches(first, COMMANDS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (
        f"latent-explorer: error: unknown command {first!r}{hint}; the commands are {', '.join(COMMANDS)}, "
        f"or name a {CHECKPOINT_SUFFIX} checkpoint or .onnx model to open it in the app"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from engines.allocator import retain_freed_memory  # ctypes only: no torch, no Qt

    retain_freed_memory()  # batched CPU decodes reuse their freed buffers (see engines/allocator.py)
    if argv and argv[0] in COMMANDS:
        from engines.cli import main as cli_main  # no Qt is loaded for the command line

        return cli_main(argv)
    error = unknown_command(argv)
    if error:
        print(USAGE, file=sys.stderr)
        print(error, file=sys.stderr)
        return 2
    from explorer.app import main as app_main

    return app_main(argv)


if __name__ == "__main__":
    sys.exit(main())
