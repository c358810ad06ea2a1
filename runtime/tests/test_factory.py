"""The factory builds adapters from settings, caches them per process, and can be reset."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

from runtime import factory
from runtime.containers import DockerRuntime
from runtime.gpus import AutoInventory, GpuDiscoveryError, NvidiaSmiInventory, NvmlInventory, StaticInventory
from runtime.workspaces import DirectoryWorkspaces, ZfsWorkspaces


@pytest.fixture
def settings_ns(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Stand-in settings object: the factory must work with whatever attributes exist."""
    ns = types.SimpleNamespace()
    monkeypatch.setattr(factory, "_settings", lambda: ns)
    factory.reset()
    yield ns
    factory.reset()


def test_importing_runtime_does_not_import_django() -> None:
    code = (
        "import sys, runtime.factory, runtime.containers, runtime.workspaces, runtime.gpus; "
        "print('django' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"


def test_container_runtime_defaults(settings_ns: types.SimpleNamespace) -> None:
    runtime = factory.get_container_runtime()
    assert isinstance(runtime, DockerRuntime)
    assert runtime.gpu_mode == "none" and runtime.publish_mode == "loopback"
    assert runtime.external_network == "medforge-external-sessions"
    assert runtime.internal_network == "medforge-internal-sessions"
    assert runtime.cap_add == []
    # Cached per process.
    assert factory.get_container_runtime() is runtime


def test_container_runtime_from_settings(settings_ns: types.SimpleNamespace) -> None:
    settings_ns.DOCKER_BASE_URL = "unix:///run/other-docker.sock"
    settings_ns.SESSION_GPU_MODE = "nvidia"
    settings_ns.SESSION_PUBLISH_MODE = "network"
    settings_ns.SESSION_CPU_LIMIT = 6
    settings_ns.SESSION_MEMORY_LIMIT = "32g"
    settings_ns.SESSION_PIDS_LIMIT = 2048
    settings_ns.SESSION_SHM_SIZE = "4g"
    settings_ns.SESSION_CAP_ADD = ["sys_ptrace"]
    settings_ns.SESSION_EXTERNAL_NETWORK = "ext-net"
    settings_ns.SESSION_INTERNAL_NETWORK = "int-net"
    runtime = factory.get_container_runtime()
    assert (runtime.base_url, runtime.gpu_mode, runtime.publish_mode) == (
        "unix:///run/other-docker.sock", "nvidia", "network")
    limits = (runtime.cpu_limit, runtime.memory_limit, runtime.pids_limit, runtime.shm_size)
    assert limits == (6.0, "32g", 2048, "4g")
    assert runtime.cap_add == ["SYS_PTRACE"]
    assert (runtime.external_network, runtime.internal_network) == ("ext-net", "int-net")


def test_workspace_store_backends(settings_ns: types.SimpleNamespace, tmp_path: Path) -> None:
    settings_ns.WORKSPACE_ROOT = str(tmp_path / "ws")
    store = factory.get_workspace_store()
    assert isinstance(store, DirectoryWorkspaces) and store.root == tmp_path / "ws"

    factory.reset()
    settings_ns.WORKSPACE_BACKEND = "zfs"
    settings_ns.WORKSPACE_ZFS_ROOT = "pool/ws"
    settings_ns.WORKSPACE_ZFS_QUOTA = "100G"
    store = factory.get_workspace_store()
    assert isinstance(store, ZfsWorkspaces)
    assert (store.root_dataset, store.quota) == ("pool/ws", "100G")

    factory.reset()
    settings_ns.WORKSPACE_BACKEND = "nfs"
    with pytest.raises(ValueError, match="WORKSPACE_BACKEND"):
        factory.get_workspace_store()


def test_gpu_inventory_kinds(settings_ns: types.SimpleNamespace) -> None:
    settings_ns.GPU_STATIC = [{"index": 0, "uuid": "GPU-0"}]
    inventory = factory.get_gpu_inventory()
    assert isinstance(inventory, StaticInventory)
    assert [g.uuid for g in inventory.discover()] == ["GPU-0"]
    for mode, kind in (("nvml", NvmlInventory), ("nvidia-smi", NvidiaSmiInventory), ("auto", AutoInventory)):
        factory.reset()
        settings_ns.GPU_DISCOVERY = mode
        assert isinstance(factory.get_gpu_inventory(), kind)
    factory.reset()
    settings_ns.GPU_DISCOVERY = "magic"
    with pytest.raises(GpuDiscoveryError, match="GPU_DISCOVERY"):
        factory.get_gpu_inventory()


def test_override_and_reset(settings_ns: types.SimpleNamespace) -> None:
    fake = StaticInventory([])
    factory.override(gpu_inventory=fake)
    assert factory.get_gpu_inventory() is fake
    factory.reset()
    assert factory.get_gpu_inventory() is not fake
