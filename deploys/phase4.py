"""Phase 4: Docker CE, the NVIDIA Container Toolkit and K3s with the GPU runtime, pinned and verified.

    pyinfra inventory.py deploys/phase4.py --dry          # plan
    pyinfra -y inventory.py deploys/phase4.py             # apply, then verify GPUs in containers

Hosts in ``workstations`` become K3s servers; hosts in ``k3s_agents`` join the first server.
Every knob and pin lives in deploys/runtime/settings.py and can be overridden per host.
"""

from pyinfra import host

from deploys.core.fact_memo import gather_facts_once
from deploys.core.guards import require_ubuntu_2404

gather_facts_once(host)
require_ubuntu_2404("phase 4")

from deploys.runtime.docker import docker
from deploys.runtime.gpu_smoke import verify_phase4
from deploys.runtime.k3s import k3s
from deploys.runtime.nvidia_toolkit import nvidia_toolkit
from deploys.runtime.services import refuse_without_systemd
from deploys.runtime.settings import load

refuse_without_systemd()
docker_enabled = load("docker").enabled
docker()
toolkit = nvidia_toolkit(docker_enabled=docker_enabled)
k3s(restart_when=[toolkit])
verify_phase4()
