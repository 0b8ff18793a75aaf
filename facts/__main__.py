"""``python -m facts``: see facts.cli."""

import sys

from .cli import main

sys.exit(main())
