"""Liveness (/healthz), readiness (/api/ready) and Prometheus metrics (/metrics)."""
from __future__ import annotations

import hmac
import ipaddress
import time

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from medforge.api.clientip import client_ip
from medforge.api.problems import Problem, problem_json_response
from medforge.api.renderers import make_meta
from medforge.ops import heartbeat
from runtime.factory import get_container_runtime, get_workspace_store

from .collectors import render_metrics


def _json(request, data: dict, status: int = 200) -> JsonResponse:
    resp = JsonResponse({"data": data, "meta": make_meta(request)}, status=status)
    resp["Cache-Control"] = "no-store"
    return resp


@require_GET
def healthz(request):
    """200 ok; 503 degraded when recovery is on and the reconcile heartbeat is stale."""
    data: dict = {"status": "ok"}
    if settings.RECONCILE_ENABLED:
        limit = 3 * settings.SESSION_POLL_INTERVAL_SECONDS
        try:
            age = heartbeat.age_seconds(heartbeat.RECONCILE)
        except Exception:  # noqa: BLE001 - the database is down: liveness still answers, degraded
            age = None
        data["reconcile_heartbeat_age_seconds"] = None if age is None else round(age, 1)
        if age is None or age > limit:
            data["status"] = "degraded"
            data["reason"] = (
                "no reconcile heartbeat yet" if age is None
                else f"reconcile heartbeat is {age:.0f}s old (limit {limit}s)"
            )
            return _json(request, data, status=503)
    return _json(request, data)


def _check(fn) -> dict:
    start = time.perf_counter()
    try:
        detail = fn()
        ok = True
    except Exception as exc:  # noqa: BLE001 - every failure is reported by name, never raised
        ok, detail = False, f"{exc.__class__.__name__}: {exc}"[:300]
    out = {"ok": ok, "ms": round((time.perf_counter() - start) * 1000, 1)}
    if detail:
        out["detail"] = detail
    return out


def _database():
    with connection.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchone()


def _redis():
    url = settings.REDIS_URL
    if not url:
        return "not configured (embedded broker)"
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    client.ping()
    return None


def _broker():
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
        import os

        os.makedirs(folder, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise RuntimeError(f"{folder} is not writable")
        return "embedded filesystem broker"
    if url.startswith("redis"):
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    return None


def _docker():
    if not get_container_runtime().ping():
        raise RuntimeError("the Docker engine does not answer")


def _workspaces():
    if not get_workspace_store().ping():
        raise RuntimeError("the workspace backend is not usable")


@require_GET
def ready(request):
    checks = {
        "database": _check(_database),
        "redis": _check(_redis),
        "broker": _check(_broker),
        "docker": _check(_docker),
        "workspaces": _check(_workspaces),
    }
    failed = [name for name, c in checks.items() if not c["ok"]]
    if failed:
        return problem_json_response(request, Problem(
            "service_unavailable", "Failing: " + ", ".join(failed), failed=failed, checks=checks))
    return _json(request, {"status": "ready", "checks": checks})


def metrics_allowed(request) -> bool:
    """Loopback and METRICS_ALLOWED_NETWORKS may scrape; anyone else needs
    `Authorization: Bearer <METRICS_TOKEN>` (when a token is configured).

    The address is the real client's (X-Forwarded-For believed only from the trusted edge),
    so a request relayed by Caddy from the internet is not mistaken for an internal one.
    """
    token = getattr(settings, "METRICS_TOKEN", "") or ""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(
            header[7:].strip().encode(), token.encode()):
        return True
    try:
        addr = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    if addr.is_loopback:
        return True
    networks = getattr(settings, "METRICS_ALLOWED_NETWORKS", []) or []
    for spec in networks:
        try:
            if addr in ipaddress.ip_network(spec, strict=False):
                return True
        except ValueError:
            continue
    return False


@require_GET
def metrics(request):
    """Prometheus text exposition: recorded metrics of every process plus scrape-time gauges."""
    if not metrics_allowed(request):
        resp = HttpResponse("metrics are restricted: scrape from an allowed network or send "
                            "Authorization: Bearer <METRICS_TOKEN>\n",
                            status=403, content_type="text/plain; charset=utf-8")
        return resp

    resp = HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)
    resp["Cache-Control"] = "no-store"
    return resp
