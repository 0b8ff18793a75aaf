"""Phase 4: Docker CE, the NVIDIA Container Toolkit and K3s with the GPU runtime, pinned and verified.

    pyinfra inventory.py deploys/phase4.py --dry          # plan
    pyinfra -y inventory.py deploys/phase4.py             # apply, then verify GPUs in containers

Hosts in ``workstations`` become K3s servers; hosts in ``k3s_agents`` join the first server.
Every knob and pin lives in deploys/phase4_settings.py and can be overridden per host.
"""

from pyinfra import host

from deploys.common import require_ubuntu_2404
from deploys.core.fact_memo import gather_facts_once

gather_facts_once(host)
require_ubuntu_2404("phase 4")

from deploys.docker import docker
from deploys.k3s import k3s
from deploys.nvidia_toolkit import nvidia_toolkit
from deploys.phase4_services import refuse_without_systemd
from deploys.phase4_settings import load
from deploys.phase4_verify import verify_phase4

refuse_without_systemd()
docker_enabled = load("docker").enabled
docker()
toolkit = nvidia_toolkit(docker_enabled=docker_enabled)
k3s(restart_when=[toolkit])
verify_phase4()
