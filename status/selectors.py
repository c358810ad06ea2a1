"""Reads behind /api/v2/status and /metrics: what the platform looks like right now.

Each selector answers from the database (sessions, GPUs, submissions, heartbeats) or from
runtime adapters (workspace store, GPU telemetry) and the broker (queue depths). A component
that cannot be read is reported as unavailable with its reason; a selector never raises for
it, so one broken dependency never blanks the whole status page or scrape.
"""
from __future__ import annotations

import os
import shutil
from typing import Any

import structlog
from django.apps import apps
from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone

from medforge.ops import heartbeat
from medforge.ops.flags import maintenance_on
from medforge.ops.models import Heartbeat
from runtime.factory import get_gpu_inventory, get_workspace_store
from sessions_app.models import Session, SessionStatus
from sessions_app.selectors import gpu_overview

log = structlog.get_logger(__name__)

QUEUES = ("default", "scoring")
# kombu's Redis transport keeps one list per priority step: `<queue>` and `<queue>\x06\x16<n>`.
_REDIS_PRIORITY_SEP = "\x06\x16"
_REDIS_PRIORITY_STEPS = (3, 6, 9)


def sessions_by_state() -> dict[str, int]:
    """Count of sessions in each status; every status is present (0 when none)."""
    counts = {value: 0 for value in SessionStatus.values}
    for row in Session.objects.order_by().values("status").annotate(n=Count("pk")):
        counts[row["status"]] = row["n"]
    return counts


def sessions_oldest_age_seconds() -> dict[str, float | None]:
    """Age of the oldest session still `starting` (since created) and still `stopping`
    (since the stop was requested); None when there is none. Stuck-session alerts read it."""
    now = timezone.now()
    starting = Session.objects.filter(status=SessionStatus.STARTING).aggregate(
        at=Min("created_at"))["at"]
    stopping_qs = Session.objects.filter(status=SessionStatus.STOPPING)
    stopping = stopping_qs.aggregate(at=Min("stop_requested_at"))["at"]
    if stopping is None and stopping_qs.exists():  # a stop without a recorded request time
        stopping = stopping_qs.aggregate(at=Min("updated_at"))["at"]
    return {
        "starting": None if starting is None else (now - starting).total_seconds(),
        "stopping": None if stopping is None else (now - stopping).total_seconds(),
    }


def gpu_counts(*, overview: dict | None = None) -> dict[str, int]:
    """GPUs by state, from the sessions app's one GPU-state selector (pass an `overview` the
    caller already read, so one page reads the GPUs once)."""
    overview = overview or gpu_overview()
    return {key: overview[key] for key in ("total", "in_use", "free", "disabled")}


def gpu_telemetry() -> tuple[dict[str, dict], str | None]:
    """NVML/nvidia-smi figures by GPU uuid, and why there are none when unavailable."""
    try:
        return get_gpu_inventory().telemetry() or {}, None
    except Exception as exc:  # noqa: BLE001 - no driver, no NVML: the status page still answers
        return {}, f"{exc.__class__.__name__}: {exc}"[:200]


def gpu_list(*, telemetry: dict[str, dict] | None = None,
             overview: dict | None = None) -> list[dict[str, Any]]:
    """Each GPU with its state (the sessions app's one definition) and NVML figures."""
    telemetry = telemetry or {}
    out = []
    for row in (overview or gpu_overview())["gpus"]:
        figures = telemetry.get(row["uuid"]) or {}
        out.append({
            "index": row["index"],
            "uuid": row["uuid"],
            "name": row["name"],
            "memory_mb": row["memory_mb"],
            "enabled": row["enabled"],
            "state": row["state"],
            "utilization_pct": figures.get("utilization_pct"),
            "memory_used_mb": figures.get("memory_used_mb"),
            "temperature_c": figures.get("temperature_c"),
        })
    return out


def queue_depths() -> dict[str, int | None]:
    """Messages waiting in each Celery queue: LLEN over kombu's priority lists with Redis,
    a count of message files with the embedded filesystem broker; None when unreadable."""
    url = settings.CELERY_BROKER_URL
    out: dict[str, int | None] = {q: None for q in QUEUES}
    try:
        if url.startswith("filesystem://"):
            folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
            names = os.listdir(folder) if os.path.isdir(folder) else []
            for q in QUEUES:
                # kombu names each message `<ms>_<uuid>.<queue>.msg`
                out[q] = sum(1 for n in names if n.partition(".")[2] == f"{q}.msg")
        elif url.startswith(("redis://", "rediss://")):
            import redis

            client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
            with client.pipeline() as pipe:
                for q in QUEUES:
                    pipe.llen(q)
                    for step in _REDIS_PRIORITY_STEPS:
                        pipe.llen(f"{q}{_REDIS_PRIORITY_SEP}{step}")
                sizes = pipe.execute()
            per = 1 + len(_REDIS_PRIORITY_STEPS)
            for i, q in enumerate(QUEUES):
                out[q] = int(sum(sizes[i * per:(i + 1) * per]))
    except Exception as exc:  # noqa: BLE001 - broker down: report unknown depths, never fail the caller
        log.warning("ops.queue_depths_unavailable", error=str(exc)[:200])
    return out


def storage_usage() -> dict[str, Any]:
    """Workspace store usage and pool health (`available: false` with the reason on failure)."""
    try:
        usage = dict(get_workspace_store().usage())
        usage["available"] = True
        return usage
    except Exception as exc:  # noqa: BLE001 - reported on the status page
        return {"available": False, "healthy": False, "health": "UNAVAILABLE",
                "error": f"{exc.__class__.__name__}: {exc}"[:300]}


def disk_usage() -> dict[str, dict[str, Any]]:
    """Filesystem use of the platform's local data directories (submissions, var)."""
    out = {}
    for name, path in (("submissions", settings.SUBMISSIONS_DIR), ("var", settings.VAR_DIR)):
        try:
            probe = str(path)
            while probe and not os.path.exists(probe):  # not created yet: measure its parent
                probe = os.path.dirname(probe.rstrip("/")) or "/"
            disk = shutil.disk_usage(probe)
            out[name] = {
                "path": str(path), "total_bytes": disk.total, "used_bytes": disk.used,
                "used_pct": round(100.0 * disk.used / disk.total, 1) if disk.total else None,
            }
        except OSError:
            continue
    return out


def _submission_model():
    try:
        model = apps.get_model("competitions", "Submission")
    except LookupError:  # the competitions models have not landed on this deployment
        return None
    names = {f.name for f in model._meta.get_fields()}
    return model if "status" in names else None


def submissions_by_status() -> dict[str, int] | None:
    """Count of submissions per status, or None where competitions have no Submission model."""
    model = _submission_model()
    if model is None:
        return None
    counts: dict[str, int] = {}
    field = model._meta.get_field("status")
    for value, _label in (field.choices or []):
        counts[str(value)] = 0
    for row in model.objects.order_by().values("status").annotate(n=Count("pk")):
        counts[str(row["status"])] = row["n"]
    return counts


def heartbeat_ages() -> dict[str, float]:
    """Seconds since each periodic job last beat (reconcile, …)."""
    now = timezone.now()
    return {hb.name: (now - hb.at).total_seconds() for hb in Heartbeat.objects.all()}


def user_counts() -> dict[str, int]:
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    return {"total": users.count(), "active": users.filter(is_active=True).count(),
            "admins": users.filter(is_staff=True).count()}


def platform_status(*, include_private: bool) -> dict[str, Any]:
    """The status page: public figures for everyone; user and submission counts only when
    `include_private` (staff)."""
    telemetry, telemetry_error = gpu_telemetry()
    overview = gpu_overview()
    counts = gpu_counts(overview=overview)
    age = None
    try:
        age = heartbeat.age_seconds(heartbeat.RECONCILE)
    except Exception:  # noqa: BLE001, S110 - the database answered the queries above
        pass
    data: dict[str, Any] = {
        "build": {"version": settings.BUILD_VERSION, "commit": settings.BUILD_COMMIT or None},
        "maintenance": maintenance_on(),
        "gpus": {
            **counts,
            "telemetry_available": bool(telemetry),
            "telemetry_error": telemetry_error,
            "devices": gpu_list(telemetry=telemetry, overview=overview),
        },
        "sessions": sessions_by_state(),
        "queues": queue_depths(),
        "storage": storage_usage(),
        "reconcile": {
            "enabled": settings.RECONCILE_ENABLED,
            "heartbeat_age_seconds": None if age is None else round(age, 1),
        },
        "generated_at": timezone.now(),
    }
    if include_private:
        data["users"] = user_counts()
        data["submissions"] = submissions_by_status()
    else:
        # Exception text can name internal hosts, paths and datasets: operators only.
        if telemetry_error:
            data["gpus"]["telemetry_error"] = PUBLIC_ERROR
        if "error" in data["storage"]:
            data["storage"]["error"] = PUBLIC_ERROR
    return data


PUBLIC_ERROR = "unavailable (administrators see the reason)"
