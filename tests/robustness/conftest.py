"""The bench and bmc fixtures (hermetic model cache, tiny model, real loopback servers, the Redfish
emulator and the in-process CLI) for these tests too."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "bmc"))  # tests/bmc's modules import each other flat

from tests.bench.conftest import model_cache, serve, start_server, tiny_model  # noqa: F401
from tests.bmc.conftest import emulator, run_cli  # noqa: F401
