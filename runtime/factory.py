"""The one place that turns Django settings into runtime adapters.

Services call `get_container_runtime()`, `get_workspace_store()` and `get_gpu_inventory()`;
each builds its adapter from settings on first use and caches it for the process. Settings are
read lazily (inside the functions), so importing this module does not import Django. Tests
swap adapters with `override(...)` and drop the cache with `reset()`.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from runtime.containers import (
    DEFAULT_EXTERNAL_NETWORK,
    DEFAULT_INTERNAL_NETWORK,
    ContainerRuntime,
    DockerRuntime,
)
from runtime.gpus import (
    AutoInventory,
    GpuDiscoveryError,
    GpuInventory,
    NvidiaSmiInventory,
    NvmlInventory,
    StaticInventory,
)
from runtime.workspaces import DirectoryWorkspaces, WorkspaceStore, ZfsWorkspaces

_lock = threading.Lock()
_cache: dict[str, Any] = {}


def _settings() -> Any:
    from django.conf import settings

    return settings


def _setting(name: str, default: Any) -> Any:
    value = getattr(_settings(), name, default)
    return default if value is None else value


def _cached(key: str, build: Any) -> Any:
    with _lock:
        if key not in _cache:
            _cache[key] = build()
        return _cache[key]


def build_container_runtime() -> DockerRuntime:
    """A fresh DockerRuntime from settings (uncached)."""
    settings = _settings()
    cpu = getattr(settings, "SESSION_CPU_LIMIT", 4.0)
    return DockerRuntime(
        base_url=getattr(settings, "DOCKER_BASE_URL", None) or None,
        timeout_s=float(_setting("DOCKER_TIMEOUT_SECONDS", 30.0)),
        gpu_mode=str(_setting("SESSION_GPU_MODE", "none")),
        publish_mode=str(_setting("SESSION_PUBLISH_MODE", "loopback")),
        cpu_limit=None if cpu in (None, "", 0) else float(cpu),
        memory_limit=getattr(settings, "SESSION_MEMORY_LIMIT", "16g") or None,
        pids_limit=getattr(settings, "SESSION_PIDS_LIMIT", 4096) or None,
        shm_size=getattr(settings, "SESSION_SHM_SIZE", "2g") or None,
        cap_add=list(_setting("SESSION_CAP_ADD", [])),
        external_network=str(_setting("SESSION_EXTERNAL_NETWORK", DEFAULT_EXTERNAL_NETWORK)),
        internal_network=str(_setting("SESSION_INTERNAL_NETWORK", DEFAULT_INTERNAL_NETWORK)),
        ready_poll_interval_s=float(_setting("SESSION_READY_POLL_INTERVAL_SECONDS", 0.02)),
    )


def build_workspace_store() -> WorkspaceStore:
    """A fresh workspace store from settings (uncached)."""
    backend = str(_setting("WORKSPACE_BACKEND", "directory")).lower()
    if backend == "directory":
        root = getattr(_settings(), "WORKSPACE_ROOT", None)
        if not root:
            base = getattr(_settings(), "BASE_DIR", None) or os.getcwd()
            root = os.path.join(str(base), "var", "workspaces")
        return DirectoryWorkspaces(root)
    if backend == "zfs":
        return ZfsWorkspaces(
            str(_setting("WORKSPACE_ZFS_ROOT", "tank/medforge/workspaces")),
            quota=getattr(_settings(), "WORKSPACE_ZFS_QUOTA", None) or None,
            mountpoint_base=getattr(_settings(), "WORKSPACE_ZFS_MOUNTPOINT_BASE", None) or None,
            zfs_bin=str(_setting("WORKSPACE_ZFS_BIN", "zfs")),
            zpool_bin=str(_setting("WORKSPACE_ZPOOL_BIN", "zpool")),
        )
    raise ValueError(f"WORKSPACE_BACKEND must be 'directory' or 'zfs', not {backend!r}")


def build_gpu_inventory() -> GpuInventory:
    """A fresh GPU inventory from settings (uncached)."""
    mode = str(_setting("GPU_DISCOVERY", "static")).lower()
    if mode == "static":
        return StaticInventory(_setting("GPU_STATIC", []))
    if mode == "nvml":
        return NvmlInventory()
    if mode in ("nvidia-smi", "nvidia_smi", "smi"):
        return NvidiaSmiInventory()
    if mode == "auto":
        return AutoInventory()
    raise GpuDiscoveryError(f"GPU_DISCOVERY must be static, nvml, nvidia-smi or auto, not {mode!r}")


def get_container_runtime() -> ContainerRuntime:
    return _cached("container_runtime", build_container_runtime)


def get_workspace_store() -> WorkspaceStore:
    return _cached("workspace_store", build_workspace_store)


def get_gpu_inventory() -> GpuInventory:
    return _cached("gpu_inventory", build_gpu_inventory)


def override(
    *,
    container_runtime: ContainerRuntime | None = None,
    workspace_store: WorkspaceStore | None = None,
    gpu_inventory: GpuInventory | None = None,
) -> None:
    """Install ready-made adapters (fakes in tests); the getters return them until reset()."""
    with _lock:
        if container_runtime is not None:
            _cache["container_runtime"] = container_runtime
        if workspace_store is not None:
            _cache["workspace_store"] = workspace_store
        if gpu_inventory is not None:
            _cache["gpu_inventory"] = gpu_inventory


def reset() -> None:
    """Forget cached adapters so the next getter call rebuilds them from settings."""
    with _lock:
        runtime = _cache.pop("container_runtime", None)
        _cache.clear()
    close = getattr(runtime, "close", None)
    if callable(close):
        close()
