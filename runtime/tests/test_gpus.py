"""GPU discovery: nvidia-smi CSV parsing, the static inventory, and the auto fallback.

This machine has no NVIDIA GPU or driver; nvidia-smi is exercised through a stand-in script
that prints real nvidia-smi output, and NVML through a stand-in `pynvml` module.
"""

from __future__ import annotations

import stat
import sys
import types
from pathlib import Path

import pytest

from runtime.gpus import (
    AutoInventory,
    GpuDiscoveryError,
    GpuInfo,
    GpuInventory,
    NvidiaSmiInventory,
    NvmlInventory,
    StaticInventory,
    parse_nvidia_smi_csv,
)

# What `nvidia-smi --query-gpu=index,uuid,name,memory.total,utilization.gpu,memory.used,
# temperature.gpu --format=csv,noheader,nounits` prints on a mixed 4-GPU host: padded fields,
# a MIG-enabled board without utilisation, a board without a temperature sensor, CRLF and a
# trailing blank line.
SMI_OUTPUT = (
    "0, GPU-5c3bd7a0-2f1e-4c7e-9d3a-1b2c3d4e5f60, NVIDIA H100 80GB HBM3, 81559, 37, 10234, 41\n"
    "1, GPU-6d4ce8b1-3a2f-4d8f-8e4b-2c3d4e5f6a71, NVIDIA H100 80GB HBM3, 81559, [N/A], 0, 33\r\n"
    "  2 ,GPU-7e5df9c2-4b3a-4e9a-9f5c-3d4e5f6a7b82 ,  NVIDIA A100-SXM4-40GB , 40960 , 0 , 3 , [N/A] \n"
    "3, GPU-8f6e0ad3-5c4b-4fab-a06d-4e5f6a7b8c93, NVIDIA RTX A6000, [Not Supported], 100, "
    "[Unknown Error], 88\n"
    "\n"
)


def test_parse_nvidia_smi_csv() -> None:
    rows = parse_nvidia_smi_csv(SMI_OUTPUT)
    assert [info for info, _ in rows] == [
        GpuInfo(0, "GPU-5c3bd7a0-2f1e-4c7e-9d3a-1b2c3d4e5f60", "NVIDIA H100 80GB HBM3", 81559),
        GpuInfo(1, "GPU-6d4ce8b1-3a2f-4d8f-8e4b-2c3d4e5f6a71", "NVIDIA H100 80GB HBM3", 81559),
        GpuInfo(2, "GPU-7e5df9c2-4b3a-4e9a-9f5c-3d4e5f6a7b82", "NVIDIA A100-SXM4-40GB", 40960),
        GpuInfo(3, "GPU-8f6e0ad3-5c4b-4fab-a06d-4e5f6a7b8c93", "NVIDIA RTX A6000", None),
    ]
    assert [t for _, t in rows] == [
        {"utilization_pct": 37.0, "memory_used_mb": 10234, "temperature_c": 41.0},
        {"utilization_pct": None, "memory_used_mb": 0, "temperature_c": 33.0},
        {"utilization_pct": 0.0, "memory_used_mb": 3, "temperature_c": None},
        {"utilization_pct": 100.0, "memory_used_mb": None, "temperature_c": 88.0},
    ]


def test_parse_keeps_a_name_with_a_comma_and_sorts_by_index() -> None:
    text = "1, GPU-b, Tesla V100, PCIe, 16384, 5, 100, 50\n0, GPU-a, Tesla T4, 15360, 1, 2, 3\n"
    rows = parse_nvidia_smi_csv(text)
    assert [(i.index, i.name) for i, _ in rows] == [(0, "Tesla T4"), (1, "Tesla V100, PCIe")]


def test_parse_empty_output_and_bad_lines() -> None:
    assert parse_nvidia_smi_csv("") == []
    assert parse_nvidia_smi_csv("\n  \n") == []
    with pytest.raises(GpuDiscoveryError, match="line 1"):
        parse_nvidia_smi_csv("No devices were found\n")
    with pytest.raises(GpuDiscoveryError, match="bad GPU index"):
        parse_nvidia_smi_csv("x, GPU-a, T4, 1, 2, 3, 4\n")


def _fake_smi(tmp_path: Path, body: str) -> str:
    script = tmp_path / "nvidia-smi"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_nvidia_smi_inventory(tmp_path: Path) -> None:
    (tmp_path / "out.csv").write_text(SMI_OUTPUT)
    args_log = tmp_path / "args"
    binary = _fake_smi(tmp_path, f'echo "$@" > {args_log}\ncat {tmp_path / "out.csv"}')
    inventory = NvidiaSmiInventory(binary=binary)
    assert isinstance(inventory, GpuInventory)
    assert [g.index for g in inventory.discover()] == [0, 1, 2, 3]
    assert args_log.read_text().split() == [
        "--query-gpu=index,uuid,name,memory.total,utilization.gpu,memory.used,temperature.gpu",
        "--format=csv,noheader,nounits",
    ]
    telemetry = inventory.telemetry()
    assert telemetry["GPU-5c3bd7a0-2f1e-4c7e-9d3a-1b2c3d4e5f60"]["utilization_pct"] == 37.0


def test_nvidia_smi_failure_is_clear(tmp_path: Path) -> None:
    binary = _fake_smi(
        tmp_path,
        'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."; exit 9',
    )
    with pytest.raises(GpuDiscoveryError, match="exit status 9: NVIDIA-SMI has failed"):
        NvidiaSmiInventory(binary=binary).discover()
    with pytest.raises(GpuDiscoveryError, match="not found"):
        NvidiaSmiInventory(binary=str(tmp_path / "missing")).discover()


def _fake_pynvml(monkeypatch: pytest.MonkeyPatch, *, fail_init: bool = False) -> types.ModuleType:
    """A stand-in for nvidia-ml-py's pynvml with two GPUs, the second without a sensor."""
    nvml = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    nvml.NVMLError = NVMLError
    nvml.NVML_TEMPERATURE_GPU = 0
    nvml.calls = []
    boards = [
        ("GPU-aaa", b"NVIDIA H100 80GB HBM3", 85520809984, 1073741824, 12, 40),
        ("GPU-bbb", "NVIDIA L4", 24152899584, 0, 0, None),
    ]

    def init() -> None:
        nvml.calls.append("init")
        if fail_init:
            raise NVMLError("Driver Not Loaded")

    def temperature(handle: int, sensor: int) -> int:
        if boards[handle][5] is None:
            raise NVMLError("Not Supported")
        return boards[handle][5]

    nvml.nvmlInit = init
    nvml.nvmlShutdown = lambda: nvml.calls.append("shutdown")
    nvml.nvmlDeviceGetCount = lambda: len(boards)
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i
    nvml.nvmlDeviceGetUUID = lambda h: boards[h][0]
    nvml.nvmlDeviceGetName = lambda h: boards[h][1]
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=boards[h][2], used=boards[h][3])
    nvml.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=boards[h][4])
    nvml.nvmlDeviceGetTemperature = temperature
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    return nvml


def test_nvml_inventory(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = _fake_pynvml(monkeypatch)
    inventory = NvmlInventory()
    assert inventory.discover() == [
        GpuInfo(0, "GPU-aaa", "NVIDIA H100 80GB HBM3", 81559),
        GpuInfo(1, "GPU-bbb", "NVIDIA L4", 23034),
    ]
    assert inventory.telemetry() == {
        "GPU-aaa": {"utilization_pct": 12.0, "memory_used_mb": 1024, "temperature_c": 40.0},
        "GPU-bbb": {"utilization_pct": 0.0, "memory_used_mb": 0, "temperature_c": None},
    }
    # Every query shuts NVML down again.
    assert nvml.calls == ["init", "shutdown", "init", "shutdown"]


def test_auto_falls_back_to_nvidia_smi_then_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_pynvml(monkeypatch, fail_init=True)
    (tmp_path / "out.csv").write_text(SMI_OUTPUT)
    smi = NvidiaSmiInventory(binary=_fake_smi(tmp_path, f"cat {tmp_path / 'out.csv'}"))
    auto = AutoInventory([NvmlInventory(), smi])
    assert len(auto.discover()) == 4
    assert set(auto.telemetry()) == {info.uuid for info, _ in parse_nvidia_smi_csv(SMI_OUTPUT)}

    broken = AutoInventory([NvmlInventory(), NvidiaSmiInventory(binary=str(tmp_path / "none"))])
    with pytest.raises(GpuDiscoveryError) as caught:
        broken.discover()
    message = str(caught.value)
    assert "Driver Not Loaded" in message and "not found" in message and "GPU_STATIC" in message
    assert broken.telemetry() == {}


def test_static_inventory() -> None:
    inventory = StaticInventory(
        [
            {"index": 1, "uuid": "GPU-fake-1", "name": "Fake GPU", "memory_mb": 1024},
            {"index": 0, "uuid": "GPU-fake-0"},
        ]
    )
    assert inventory.discover() == [
        GpuInfo(0, "GPU-fake-0", "", None),
        GpuInfo(1, "GPU-fake-1", "Fake GPU", 1024),
    ]
    assert inventory.telemetry() == {}
    with pytest.raises(GpuDiscoveryError, match="index and uuid"):
        StaticInventory([{"index": 0}])
    with pytest.raises(GpuDiscoveryError, match="duplicate"):
        StaticInventory([{"index": 0, "uuid": "a"}, {"index": 0, "uuid": "b"}])
