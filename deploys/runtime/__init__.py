"""The container runtime (phase 4): Docker CE, the NVIDIA Container Toolkit, K3s, their pins and checks."""
