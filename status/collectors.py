"""What /metrics exposes: the recorded metrics of every process plus gauges computed at scrape
time from the database and the runtime adapters.

Recorded metrics (counters, histograms in medforge/ops/metrics.py) come from
prometheus_client's multiprocess files when PROMETHEUS_MULTIPROC_DIR is set (gunicorn workers,
Celery worker children and beat each write their own), otherwise from this process's registry.
Compose gives each service its own PROMETHEUS_MULTIPROC_DIR below one shared volume, because
pids of different containers collide; METRICS_MULTIPROC_ROOT names that volume and the scrape
merges every service's files. Gauges that describe state (sessions by state, GPUs, submissions,
heartbeat age, queue depths, storage) are never recorded: the collector reads them fresh, so
they are right whichever process serves the scrape.
"""
from __future__ import annotations

import glob
import os
from collections.abc import Iterable

import structlog
from django.conf import settings
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from sessions_app.selectors import gpu_overview

from . import selectors

log = structlog.get_logger(__name__)


class PlatformStateCollector:
    """Gauges read at scrape time. A part that fails is skipped (and counted in
    `medforge_collector_errors`), so one broken dependency never empties the scrape."""

    def collect(self) -> Iterable[Metric]:
        errors = GaugeMetricFamily(
            "medforge_collector_errors", "Parts of the state collector that failed this scrape.",
            labels=["part"])
        for part, fn in (
            ("build", self._build),
            ("sessions", self._sessions),
            ("gpus", self._gpus),
            ("submissions", self._submissions),
            ("heartbeats", self._heartbeats),
            ("queues", self._queues),
            ("storage", self._storage),
        ):
            try:
                yield from fn()
            except Exception as exc:  # noqa: BLE001 - one part failing must not empty the scrape
                log.warning("ops.collector_failed", part=part, error=str(exc)[:200])
                errors.add_metric([part], 1)
        yield errors

    @staticmethod
    def _build():
        info = InfoMetricFamily("medforge_build", "Version and commit of the running code.")
        info.add_metric([], {"version": settings.BUILD_VERSION, "commit": settings.BUILD_COMMIT})
        yield info

    @staticmethod
    def _sessions():
        g = GaugeMetricFamily("medforge_sessions", "Sessions by state.", labels=["state"])
        for state, n in selectors.sessions_by_state().items():
            g.add_metric([state], n)
        yield g
        oldest = GaugeMetricFamily(
            "medforge_session_oldest_age_seconds",
            "Age of the oldest session still in a transitional state (0 when none).",
            labels=["state"])
        for state, age in selectors.sessions_oldest_age_seconds().items():
            oldest.add_metric([state], age or 0.0)
        yield oldest

    @staticmethod
    def _gpus():
        overview = gpu_overview()
        counts = selectors.gpu_counts(overview=overview)
        g = GaugeMetricFamily("medforge_gpus", "GPUs by state.", labels=["state"])
        for state in ("in_use", "free", "disabled"):
            g.add_metric([state], counts[state])
        yield g
        telemetry, _ = selectors.gpu_telemetry()
        if telemetry:
            util = GaugeMetricFamily("medforge_gpu_utilization_percent", "GPU utilisation (NVML).",
                                     labels=["index", "uuid"])
            mem = GaugeMetricFamily("medforge_gpu_memory_used_bytes", "GPU memory in use (NVML).",
                                    labels=["index", "uuid"])
            temp = GaugeMetricFamily("medforge_gpu_temperature_celsius",
                                     "GPU temperature (NVML).", labels=["index", "uuid"])
            for gpu in selectors.gpu_list(telemetry=telemetry, overview=overview):
                figures = telemetry.get(gpu["uuid"]) or {}
                labels = [str(gpu["index"]), gpu["uuid"]]
                if figures.get("utilization_pct") is not None:
                    util.add_metric(labels, figures["utilization_pct"])
                if figures.get("memory_used_mb") is not None:
                    mem.add_metric(labels, figures["memory_used_mb"] * 1024 * 1024)
                if figures.get("temperature_c") is not None:
                    temp.add_metric(labels, figures["temperature_c"])
            yield from (util, mem, temp)

    @staticmethod
    def _submissions():
        counts = selectors.submissions_by_status()
        if counts is None:
            return
        g = GaugeMetricFamily("medforge_submissions", "Submissions by status.", labels=["status"])
        for status, n in counts.items():
            g.add_metric([status], n)
        yield g

    @staticmethod
    def _heartbeats():
        g = GaugeMetricFamily("medforge_heartbeat_age_seconds",
                              "Seconds since a periodic job (reconcile) last completed a pass.",
                              labels=["name"])
        for name, age in selectors.heartbeat_ages().items():
            g.add_metric([name], age)
        yield g
        enabled = GaugeMetricFamily("medforge_reconcile_enabled",
                                    "1 when crash recovery (reconcile) is enabled.")
        enabled.add_metric([], 1 if settings.RECONCILE_ENABLED else 0)
        yield enabled

    @staticmethod
    def _queues():
        g = GaugeMetricFamily("medforge_celery_queue_length", "Messages waiting per Celery queue.",
                              labels=["queue"])
        for queue, n in selectors.queue_depths().items():
            if n is not None:
                g.add_metric([queue], n)
        yield g

    @staticmethod
    def _storage():
        usage = selectors.storage_usage()
        healthy = GaugeMetricFamily("medforge_workspace_pool_healthy",
                                    "1 when the workspace store (ZFS pool) is healthy.",
                                    labels=["backend"])
        healthy.add_metric([str(usage.get("backend", "unknown"))], 1 if usage.get("healthy") else 0)
        yield healthy
        if usage.get("available"):
            ratio = GaugeMetricFamily(
                "medforge_workspace_used_ratio",
                "Used fraction of the workspace store (ZFS: root dataset incl. quota; and pool).",
                labels=["scope"])
            if usage.get("used_pct") is not None:
                ratio.add_metric(["workspaces"], usage["used_pct"] / 100.0)
            if usage.get("pool_used_pct") is not None:
                ratio.add_metric(["pool"], usage["pool_used_pct"] / 100.0)
            yield ratio
        disk = GaugeMetricFamily("medforge_disk_used_ratio",
                                 "Used fraction of the filesystems holding platform data.",
                                 labels=["mount"])
        for name, figures in selectors.disk_usage().items():
            if figures.get("used_pct") is not None:
                disk.add_metric([name], figures["used_pct"] / 100.0)
        yield disk


class MergedMultiProcessCollector:
    """Merges prometheus_client multiprocess files of every service below one root."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def files(self) -> list[str]:
        found: set[str] = set()
        for path in self.paths:
            found.update(glob.glob(os.path.join(path, "*.db")))
            found.update(glob.glob(os.path.join(path, "*", "*.db")))
        return sorted(found)

    def collect(self) -> Iterable[Metric]:
        return MultiProcessCollector.merge(self.files(), accumulate=True)


def multiprocess_paths() -> list[str]:
    """Where recorded metrics live: METRICS_MULTIPROC_ROOT (all services) and this process's
    own PROMETHEUS_MULTIPROC_DIR; empty in single-process mode."""
    paths = [getattr(settings, "METRICS_MULTIPROC_ROOT", "") or "",
             os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")]
    return [p for p in dict.fromkeys(paths) if p]


class _ScrapeRegistry:
    """The registry one scrape renders: recorded metrics + the state collector."""

    def __init__(self, *collectors) -> None:
        self.collectors = collectors

    def collect(self) -> Iterable[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def scrape_registry() -> _ScrapeRegistry:
    paths = multiprocess_paths()
    recorded = MergedMultiProcessCollector(paths) if paths else REGISTRY
    return _ScrapeRegistry(recorded, PlatformStateCollector())


def render_metrics() -> bytes:
    """The Prometheus text exposition of everything above."""
    return generate_latest(scrape_registry())
