"""The installed Ubuntu host (phase 3): GRUB, the NVIDIA driver, the data disk, the model download."""
