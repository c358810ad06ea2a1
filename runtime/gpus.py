"""GPU discovery and telemetry: which physical GPUs this host has, and how busy they are.

Sources: NVML (nvidia-ml-py, imported only when used), the `nvidia-smi` CLI, or a static list
from settings for hosts without GPUs (development, tests). `AutoInventory` tries NVML, then
nvidia-smi, and fails with both reasons.
"""

from __future__ import annotations

import csv
import io
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

Telemetry = dict[str, float | int | None]

NVIDIA_SMI_FIELDS = "index,uuid,name,memory.total,utilization.gpu,memory.used,temperature.gpu"


class GpuDiscoveryError(Exception):
    """The GPUs of this host could not be listed."""


@dataclass(frozen=True)
class GpuInfo:
    index: int
    uuid: str
    name: str
    memory_mb: int | None


@runtime_checkable
class GpuInventory(Protocol):
    def discover(self) -> list[GpuInfo]: ...

    def telemetry(self) -> dict[str, Telemetry]:
        """uuid → {utilization_pct, memory_used_mb, temperature_c}; {} when unavailable."""
        ...


# --------------------------------------------------------------------------- nvidia-smi


def _number(text: str) -> float | None:
    """A numeric nvidia-smi field, or None for `[N/A]`, `[Not Supported]`, blanks and so on."""
    value = text.strip()
    if not value or value.startswith("[") or value.upper() in ("N/A", "NA"):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _int_or_none(value: float | None) -> int | None:
    return None if value is None else round(value)


def parse_nvidia_smi_csv(text: str) -> list[tuple[GpuInfo, Telemetry]]:
    """Parse `nvidia-smi --query-gpu=<NVIDIA_SMI_FIELDS> --format=csv,noheader,nounits`.

    Blank lines are skipped, whitespace around fields ignored, and unavailable values
    (`[N/A]`, `[Not Supported]`, …) become None. A name that itself contains a comma is kept
    whole: the first two and last four columns are fixed, the rest is the name.
    """
    result: list[tuple[GpuInfo, Telemetry]] = []
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    for line_no, row in enumerate(reader, start=1):
        fields = [f.strip() for f in row]
        if not any(fields):
            continue
        if len(fields) < 7:
            raise GpuDiscoveryError(
                f"nvidia-smi line {line_no}: expected 7 fields ({NVIDIA_SMI_FIELDS}), got {row!r}"
            )
        index_text, uuid = fields[0], fields[1]
        name = ", ".join(fields[2:-4])
        memory_total, utilization, memory_used, temperature = fields[-4:]
        try:
            index = int(index_text)
        except ValueError as exc:
            raise GpuDiscoveryError(f"nvidia-smi line {line_no}: bad GPU index {index_text!r}") from exc
        if not uuid or uuid.startswith("["):
            raise GpuDiscoveryError(f"nvidia-smi line {line_no}: GPU {index} has no UUID")
        info = GpuInfo(index=index, uuid=uuid, name=name, memory_mb=_int_or_none(_number(memory_total)))
        telemetry: Telemetry = {
            "utilization_pct": _number(utilization),
            "memory_used_mb": _int_or_none(_number(memory_used)),
            "temperature_c": _number(temperature),
        }
        result.append((info, telemetry))
    return sorted(result, key=lambda pair: pair[0].index)


class NvidiaSmiInventory:
    """GPUs as reported by the `nvidia-smi` CLI."""

    def __init__(self, binary: str = "nvidia-smi", timeout_s: float = 15.0) -> None:
        self.binary = binary
        self.timeout_s = timeout_s

    def _query(self) -> list[tuple[GpuInfo, Telemetry]]:
        argv = [self.binary, f"--query-gpu={NVIDIA_SMI_FIELDS}", "--format=csv,noheader,nounits"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s, check=False)
        except FileNotFoundError as exc:
            raise GpuDiscoveryError(f"{self.binary} not found: is the NVIDIA driver installed?") from exc
        except subprocess.TimeoutExpired as exc:
            raise GpuDiscoveryError(f"{self.binary} did not answer within {self.timeout_s:g}s") from exc
        if done.returncode != 0:
            # nvidia-smi reports driver problems on stdout, not stderr.
            message = (done.stderr.strip() or done.stdout.strip() or "(no output)")
            raise GpuDiscoveryError(f"{self.binary} failed with exit status {done.returncode}: {message}")
        return parse_nvidia_smi_csv(done.stdout)

    def discover(self) -> list[GpuInfo]:
        return [info for info, _ in self._query()]

    def telemetry(self) -> dict[str, Telemetry]:
        return {info.uuid: telemetry for info, telemetry in self._query()}


# --------------------------------------------------------------------------- NVML


class NvmlInventory:
    """GPUs as reported by NVML through nvidia-ml-py (`pynvml`), imported on first use so
    hosts without the library or driver can still import this module."""

    @contextmanager
    def _session(self) -> Iterator[Any]:
        """nvmlInit … nvmlShutdown around one query; NVML errors become GpuDiscoveryError."""
        try:
            import pynvml
        except ImportError as exc:
            raise GpuDiscoveryError("nvidia-ml-py (pynvml) is not installed") from exc
        try:
            pynvml.nvmlInit()
        except Exception as exc:  # NVMLError subclasses: LibraryNotFound, DriverNotLoaded, …
            raise GpuDiscoveryError(f"NVML could not initialise: {exc}") from exc
        try:
            yield pynvml
        except pynvml.NVMLError as exc:
            raise GpuDiscoveryError(f"NVML failed while reading GPUs: {exc}") from exc
        finally:
            with suppress(Exception):
                pynvml.nvmlShutdown()

    @staticmethod
    def _text(value: Any) -> str:
        return value.decode() if isinstance(value, bytes) else str(value)

    def discover(self) -> list[GpuInfo]:
        gpus = []
        with self._session() as nvml:
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                gpus.append(
                    GpuInfo(
                        index=index,
                        uuid=self._text(nvml.nvmlDeviceGetUUID(handle)),
                        name=self._text(nvml.nvmlDeviceGetName(handle)),
                        memory_mb=int(nvml.nvmlDeviceGetMemoryInfo(handle).total // (1024 * 1024)),
                    )
                )
        return gpus

    def telemetry(self) -> dict[str, Telemetry]:
        result: dict[str, Telemetry] = {}
        with self._session() as nvml:
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                uuid = self._text(nvml.nvmlDeviceGetUUID(handle))
                result[uuid] = {
                    "utilization_pct": _optional(
                        nvml, lambda h=handle: float(nvml.nvmlDeviceGetUtilizationRates(h).gpu)
                    ),
                    "memory_used_mb": _optional(
                        nvml, lambda h=handle: int(nvml.nvmlDeviceGetMemoryInfo(h).used // (1024 * 1024))
                    ),
                    "temperature_c": _optional(
                        nvml,
                        lambda h=handle: float(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)),
                    ),
                }
        return result


def _optional(nvml: Any, read: Callable[[], Any]) -> Any:
    # Some boards do not report every figure (NVML_ERROR_NOT_SUPPORTED): that is a gap, not
    # a failure of the whole telemetry call.
    try:
        return read()
    except nvml.NVMLError:
        return None


# --------------------------------------------------------------------------- static / auto


class StaticInventory:
    """GPUs declared in settings (`GPU_STATIC`): for hosts without GPUs and for tests."""

    def __init__(self, entries: Iterable[Mapping[str, Any]]) -> None:
        gpus = []
        for position, entry in enumerate(entries):
            if "uuid" not in entry or "index" not in entry:
                raise GpuDiscoveryError(
                    f"GPU_STATIC entry {position} needs at least index and uuid: {dict(entry)!r}"
                )
            memory = entry.get("memory_mb")
            gpus.append(
                GpuInfo(
                    index=int(entry["index"]),
                    uuid=str(entry["uuid"]),
                    name=str(entry.get("name") or ""),
                    memory_mb=None if memory is None else int(memory),
                )
            )
        indexes = [g.index for g in gpus]
        uuids = [g.uuid for g in gpus]
        if len(set(indexes)) != len(indexes) or len(set(uuids)) != len(uuids):
            raise GpuDiscoveryError("GPU_STATIC has duplicate indexes or uuids")
        self._gpus = sorted(gpus, key=lambda g: g.index)

    def discover(self) -> list[GpuInfo]:
        return list(self._gpus)

    def telemetry(self) -> dict[str, Telemetry]:
        return {}


class AutoInventory:
    """NVML first, then nvidia-smi; remembers the first source that worked."""

    def __init__(self, sources: Iterable[GpuInventory] | None = None) -> None:
        self._sources: list[GpuInventory] = list(sources) if sources is not None else [
            NvmlInventory(),
            NvidiaSmiInventory(),
        ]
        self._chosen: GpuInventory | None = None

    def discover(self) -> list[GpuInfo]:
        if self._chosen is not None:
            return self._chosen.discover()
        reasons = []
        for source in self._sources:
            try:
                gpus = source.discover()
            except GpuDiscoveryError as exc:
                reasons.append(f"{type(source).__name__}: {exc}")
                continue
            self._chosen = source
            return gpus
        raise GpuDiscoveryError(
            "no GPU source worked (set GPU_DISCOVERY=static and GPU_STATIC on hosts without "
            "NVIDIA GPUs): " + "; ".join(reasons)
        )

    def telemetry(self) -> dict[str, Telemetry]:
        if self._chosen is None:
            try:
                self.discover()
            except GpuDiscoveryError:
                return {}
        assert self._chosen is not None
        try:
            return self._chosen.telemetry()
        except GpuDiscoveryError:
            return {}
