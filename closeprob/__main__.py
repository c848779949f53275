"""`python -m closeprob <command>` (the same as the `closeprob` console script)."""

import sys

from closeprob.pipeline.cli import main

sys.exit(main())
