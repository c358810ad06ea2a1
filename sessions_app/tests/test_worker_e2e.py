"""End to end through a REAL Celery worker process: the API queues the start task on a Redis
broker, the worker runs the container on Docker, the session becomes `running`; the stop goes
the same way to `stopped` with a snapshot. The worker uses this test's database (a live,
transactional one) and its own Redis database (9), so nothing else consumes the tasks."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import docker
import pytest
import redis
from django.db import connection

from medforge.celery import app as celery_app
from runtime.factory import get_workspace_store
from sessions_app import dispatch, tasks
from sessions_app.models import Session, Snapshot
from testkit.api import assert_envelope
from testkit.sessions import EXT_NET, INT_NET, REPO, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.mariadb, pytest.mark.slow,
              pytest.mark.django_db(transaction=True)]

BROKER = "redis://127.0.0.1:6379/9"


@pytest.fixture
def worker(docker_sessions, tmp_path):
    redis.Redis.from_url(BROKER).flushdb()
    db = connection.settings_dict
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTEST_VERSION"},
        "MEDFORGE_ENV": "test",
        "DATABASE_URL": f"mysql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/{db['NAME']}",
        "CELERY_BROKER_URL": BROKER,
        "SESSION_EXTERNAL_NETWORK": EXT_NET,
        "SESSION_INTERNAL_NETWORK": INT_NET,
        "WORKSPACE_ROOT": str(get_workspace_store().root),
        "SESSION_START_TIMEOUT_SECONDS": "60",
        "SESSION_STOP_TIMEOUT_SECONDS": "5",
        "RECONCILE_ENABLED": "false",
        "LOG_LEVEL": "INFO",
    }
    log_path = tmp_path / "worker.log"
    log = open(log_path, "wb")  # noqa: SIM115 — the worker writes to it until teardown
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "medforge", "worker", "-Q", "default", "-P", "solo",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO",
         "-n", f"pytest-sessions-{os.getpid()}@%h"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def send(task_name: str, session_id: str) -> None:
        with celery_app.connection_for_write(BROKER) as conn:
            getattr(tasks, task_name).apply_async(args=[session_id], connection=conn)

    dispatch.set_sender(send)
    yield log_path
    dispatch.set_sender(None)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    log.close()


def _status(session_id: str, want: str, log_path) -> bool:
    status = Session.objects.filter(pk=session_id).values_list("status", flat=True).first()
    if status == "error":
        pytest.fail(f"session went to error: {Session.objects.get(pk=session_id).error_message}\n"
                    f"worker log:\n{log_path.read_text()[-3000:]}")
    return status == want


def test_session_reaches_running_then_stopped_through_a_real_worker(worker, owner, gpus,
                                                                   local_pack, client_for,
                                                                   cleanup_containers):
    client = client_for(owner)
    created = assert_envelope(client.post("/api/v2/external/sessions", {}, format="json"), 201)
    sid = created["id"]
    assert created["status"] == "starting"
    wait_for(lambda: _status(sid, "running", worker), timeout_s=90, interval_s=0.2)
    session = Session.objects.get(pk=sid)
    detail = assert_envelope(client.get(f"/api/v2/external/sessions/{sid}"))
    assert detail["status"] == "running" and detail["ide_url"].startswith("http://s-")
    api = docker.APIClient(timeout=30, **docker.utils.kwargs_from_env())
    try:
        assert api.inspect_container(session.container_id)["State"]["Running"] is True

        stopped = assert_envelope(client.post(f"/api/v2/external/sessions/{sid}/stop"), 202)
        assert stopped["session"]["status"] == "stopping"
        wait_for(lambda: _status(sid, "stopped", worker), timeout_s=60, interval_s=0.2)
        assert api.containers(all=True, filters={"id": session.container_id}) == []
    finally:
        api.close()
    assert Snapshot.objects.filter(session_id=sid, kind="stop").count() == 1
    events = [e["kind"] for e in assert_envelope(client.get(f"/api/v2/external/sessions/{sid}/events"))]
    assert events == ["created", "workspace_ready", "container_started", "running",
                      "stop_requested", "container_removed", "stopped"]
