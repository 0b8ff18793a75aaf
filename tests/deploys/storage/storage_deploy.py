"""The storage step alone, as a deploy file for the real loop-device apply."""

from deploys.host.storage.deploy import data_disk

data_disk()
