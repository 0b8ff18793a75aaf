"""``python -m bmc``."""

import sys

from bmc.cli import main

sys.exit(main())
