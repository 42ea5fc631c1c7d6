"""Run by tests/test_kill_resume.py: the real `latent-explorer train` command line, announcing each
finished step on stdout so the test knows how far a run got before it killed it."""

from __future__ import annotations

import sys

from engines import cli
from engines.training import StepDone, Trainer

_run = Trainer.run


def _announcing_run(self):
    for event in _run(self):
        if isinstance(event, StepDone):
            print(f"step {event.step}", flush=True)
        yield event


Trainer.run = _announcing_run
sys.exit(cli.main(sys.argv[1:]))
