"""Phase 5: the AI stack as Docker Compose projects rendered from inventory, each health-checked.

    pyinfra inventory.py deploys/phase5.py --dry --diff   # plan (budget checked, nothing changed)
    pyinfra -y inventory.py deploys/phase5.py             # apply

Order matters: the memory budget is checked before anything is uploaded, so an impossible model
line-up (the runbook's 386 GB quant in 384 GB of RAM) stops the host with the numbers and no change.
Every key is documented in docs/phase5.md; defaults live in deploys/stack/config.py.
"""

from deploys.core.guards import require_ubuntu_2404

require_ubuntu_2404("phase 5")

from deploys.stack.compose import ensure_network, host_stack, require_compose, stop_disabled
from deploys.stack.evaluation import evaluation
from deploys.stack.inference import budget_or_refuse, inference
from deploys.stack.marker import record
from deploys.stack.memgraph import memgraph
from deploys.stack.observability import observability
from deploys.stack.phoenix import phoenix
from deploys.stack.services import agents, autoglm

config = host_stack()
budget_or_refuse(config)
require_compose()
ensure_network(config)

deployed = ["inference"]
inference(config)
for key, deploy_function in (("memgraph", memgraph), ("agents", agents), ("autoglm", autoglm),
                             ("observability", observability)):
    if getattr(config, key).enabled:
        deploy_function(config)
        deployed.append(key)
    else:
        stop_disabled(config, key)
if config.eval.enabled:
    evaluation(config)
if config.phoenix.enabled:
    phoenix(deployed, config)
record(config, deployed)
