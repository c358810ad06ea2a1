"""Adapters between MedForge and the host: Docker containers, workspaces (ZFS or plain
directories) and GPU discovery (NVML, nvidia-smi, settings).

This package is the only code that talks to Docker, ZFS or NVML. It imports no Django model
and does not import Django at module import time; `runtime.factory` reads settings lazily.
Import the submodules directly (`from runtime.containers import DockerRuntime`): importing
this package loads nothing heavy.
"""

from __future__ import annotations
