"""Run ``deploys.checks.stack.rows`` against this machine (``@local``) through pyinfra; print JSON rows.

A separate process because pyinfra's connectors need gevent's monkey-patching, which must not leak
into the pytest process. ``argv[1]`` is the folder holding ``phase5.json`` (the marker); ``argv[2]``
(optional) the host data's ``verify`` table as JSON.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402

from pyinfra.api import Config, Inventory, State  # noqa: E402
from pyinfra.api.connect import connect_all, disconnect_all  # noqa: E402
from pyinfra.api.state import StateStage  # noqa: E402
from pyinfra.context import ctx_state  # noqa: E402

import deploys.checks.context as context  # noqa: E402
from deploys.checks import stack  # noqa: E402
from deploys.checks.context import CheckContext  # noqa: E402

context.MARKER_DIR = sys.argv[1]
verify = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
inventory = Inventory(([("@local", {"verify": verify})], {}))
state = State(inventory=inventory, config=Config())
with ctx_state.use(state):
    state.set_stage(StateStage.Connect)
    connect_all(state)
    try:
        rows = stack.rows(CheckContext.for_host(next(iter(inventory))))
        print(json.dumps([row.as_dict() for row in rows]))
    finally:
        disconnect_all(state)
