"""The data disk (phase 3): find it by model/serial, partition, mkfs.xfs, mount at /nvme by UUID.

Host data ``storage`` (merged over :data:`DEFAULTS`); the disk itself comes from the host data's
``disks`` entry whose ``role`` is ``storage.disk_role``.
"""

from __future__ import annotations

from typing import Any

from deploys.settings import settings

DEFAULTS: dict[str, Any] = {
    "disk_role": "ubuntu",
    "layout": "append",
    "label": "omni-data",
    "min_size_gib": 300,
    "mountpoint": "/nvme",
    "fstab": "/etc/fstab",
    "mount_options": "defaults,noatime",
    "folders": ["models", "memgraph", "phoenix", "prometheus", "grafana", "eval", "letta"],
    "owner": "root",
    "group": "root",
    "mode": "755",
    "allow_unidentified_disk": False,
}


def storage_settings(data: Any) -> dict[str, Any]:
    return settings(DEFAULTS, data, "storage")
