"""`latent-explorer` and `python -m explorer`: the GUI, or the train/eval/sample commands."""

from __future__ import annotations

import sys

COMMANDS = ("train", "eval", "sample")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        from engines.cli import main as cli_main  # no Qt is loaded for the command line

        return cli_main(argv)
    from explorer.app import main as app_main

    return app_main(argv)


if __name__ == "__main__":
    sys.exit(main())
