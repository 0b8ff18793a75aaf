"""`python -m bench sweep|report|genmodel` (see bench/cli.py and docs/bench.md)."""

import sys

from bench.cli import main

sys.exit(main())
