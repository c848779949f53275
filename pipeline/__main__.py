"""`python -m pipeline <command>` from the repository root, kept for existing scripts; the
installed entry points are the `closeprob` console script and `python -m closeprob`."""

import sys

from closeprob.pipeline.cli import main

sys.exit(main())
