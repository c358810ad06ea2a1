"""Reconcile converges for every case of SPEC §4 on a real Docker engine, including workers
killed in the middle of a start or a stop; one labelled list call per pass; backoff and the
heartbeat /healthz reads; cleanup of orphans (dry run unless --force)."""
from __future__ import annotations

import io
import uuid

import docker
import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from runtime.containers import (
    ContainerRuntimeError,
    DockerRuntime,
    SessionContainerSpec,
)
from runtime.factory import get_workspace_store, override
from sessions_app import lifecycle, reconcile, services, tasks
from sessions_app.models import Session, Snapshot

pytestmark = [pytest.mark.docker, pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _fresh_engine(cleanup_containers):
    """Each test starts with none of this run's containers on the engine."""
    yield


@pytest.fixture
def api():
    client = docker.APIClient(timeout=60, **docker.utils.kwargs_from_env())
    yield client
    client.close()


def running(user) -> Session:
    session = services.session_create(user=user, exposure="external")
    assert tasks.start_session.apply(args=[str(session.id)]).get() == "running"
    session.refresh_from_db()
    return session


def backdate(session: Session, **seconds) -> None:
    fields = {name: timezone.now() - timezone.timedelta(seconds=s) for name, s in seconds.items()}
    Session.objects.filter(pk=session.pk).update(**fields)


def exists(api, name: str) -> bool:
    return bool(api.containers(all=True, filters={"name": f"^/{name}$"}))


def test_starting_whose_container_vanished_becomes_error(owner, gpus, local_pack, docker_sessions):
    session = services.session_create(user=owner, exposure="external")
    Session.objects.filter(pk=session.pk).update(container_id="f" * 64)
    report = reconcile.reconcile_pass()
    session.refresh_from_db()
    assert session.status == "error" and session.active_gpu is None
    assert "disappeared" in session.error_message
    assert ("starting_container_missing", session.slug, "error") in report.actions


def test_starting_without_container_yet_is_left_alone(owner, gpus, local_pack, docker_sessions):
    session = services.session_create(user=owner, exposure="external")
    assert reconcile.reconcile_pass().actions == []
    session.refresh_from_db()
    assert session.status == "starting"


def test_worker_killed_mid_start_times_out_cleaned_and_gpu_freed(owner, gpus, local_pack,
                                                                docker_sessions, api):
    """The worker ran the container and died; the message was lost. After the start timeout
    reconcile removes the container and marks error."""
    session = services.session_create(user=owner, exposure="external")
    workspace = get_workspace_store().create(owner.pk, str(session.id))
    docker_sessions.run(lifecycle._spec(session, workspace.host_path))
    assert exists(api, session.container_name)
    assert reconcile.reconcile_pass().actions == []  # still within the timeout
    backdate(session, created_at=3600)
    report = reconcile.reconcile_pass()
    session.refresh_from_db()
    assert session.status == "error" and session.active_gpu is None
    assert "did not become ready within" in session.error_message
    assert not exists(api, session.container_name)
    assert report.actions == [("start_timeout", session.slug, "error")]


def test_worker_killed_mid_stop_is_finished_with_a_snapshot(owner, stranger, gpus, local_pack,
                                                           docker_sessions, api):
    # Killed after removing the container, before the snapshot.
    a = running(owner)
    services.session_request_stop(session=a, by=owner)
    docker_sessions.stop_and_remove(a.container_name, timeout_s=1)
    # Killed before doing anything: the container still runs.
    b = running(stranger)
    services.session_request_stop(session=b, by=stranger)

    assert reconcile.reconcile_pass().actions == []  # their stop tasks may still be working
    backdate(a, stop_requested_at=3600)
    backdate(b, stop_requested_at=3600)
    report = reconcile.reconcile_pass()
    assert sorted(report.actions) == sorted([("stop_finished", a.slug, "stopped"),
                                             ("stop_finished", b.slug, "stopped")])
    for session in (a, b):
        session.refresh_from_db()
        assert session.status == "stopped" and session.active_gpu is None
        assert not exists(api, session.container_name)
        snap = Snapshot.objects.get(session=session)
        assert snap.kind == "stop"
        assert [s.name for s in get_workspace_store().list_snapshots(session.workspace_id)] == [snap.name]


def test_snapshot_taken_before_the_crash_is_recorded_not_repeated(owner, gpus, local_pack,
                                                                  docker_sessions):
    session = running(owner)
    services.session_request_stop(session=session, by=owner)
    session.refresh_from_db()
    docker_sessions.stop_and_remove(session.container_name, timeout_s=1)
    taken = get_workspace_store().snapshot(session.workspace_id, "stop-1767225600000")
    assert tasks.stop_session.apply(args=[str(session.id)]).get() == "stopped"
    assert list(Snapshot.objects.filter(session=session).values_list("full_name", flat=True)) == [
        taken.full_name]
    assert len(get_workspace_store().list_snapshots(session.workspace_id)) == 1


@pytest.mark.parametrize("how", ["exited", "vanished"])
def test_running_whose_container_died_gets_a_death_snapshot_and_error(how, owner, gpus,
                                                                     local_pack, docker_sessions,
                                                                     api):
    session = running(owner)
    if how == "exited":
        api.kill(session.container_id)
        api.wait(session.container_id, timeout=30)
    else:
        api.remove_container(session.container_id, force=True)
    report = reconcile.reconcile_pass()
    session.refresh_from_db()
    assert session.status == "error" and session.active_gpu is None
    snap = Snapshot.objects.get(session=session)
    assert snap.kind == "death" and snap.name.startswith("death-")
    assert ("exited" if how == "exited" else "disappeared") in session.error_message
    assert not exists(api, session.container_name)
    assert report.actions == [("running_container_gone", session.slug, "error")]
    # A second pass has nothing left to do.
    assert reconcile.reconcile_pass().actions == []


def test_drifted_container_id_and_upstream_are_normalized(owner, gpus, local_pack,
                                                         docker_sessions):
    session = running(owner)
    real = (session.container_id, session.upstream)
    Session.objects.filter(pk=session.pk).update(container_id="0" * 64, upstream="127.0.0.1:1")
    report = reconcile.reconcile_pass()
    session.refresh_from_db()
    assert (session.container_id, session.upstream) == real
    assert session.status == "running"
    assert report.actions == [("drift_normalized", session.slug, "container_id,upstream")]
    assert session.events.last().kind == "reconciled"


def test_one_docker_list_call_per_pass_whatever_the_number_of_sessions(owner, stranger, entitled,
                                                                      gpus, local_pack,
                                                                      docker_sessions):
    for user in (owner, stranger, entitled):
        running(user)
    report = reconcile.reconcile_pass()
    assert report.sessions == 3 and report.containers == 3
    assert report.docker_calls == 1 and report.actions == []


def test_orphans_are_reported_and_removed_only_by_cleanup_force(owner, gpus, local_pack,
                                                               docker_sessions, api):
    ghost = SessionContainerSpec(session_id=str(uuid.uuid4()), slug="orphan01", user_id=owner.pk,
                                 exposure="external", image=local_pack.image)
    docker_sessions.run(ghost)
    kept = running(owner)
    report = reconcile.reconcile_pass()
    assert [o.name for o in report.orphans] == ["mf-session-orphan01"]
    assert exists(api, "mf-session-orphan01")

    out = io.StringIO()
    call_command("cleanup", stdout=out)
    assert "would remove: mf-session-orphan01" in out.getvalue() and "dry run" in out.getvalue()
    assert exists(api, "mf-session-orphan01")
    out = io.StringIO()
    call_command("cleanup", "--force", stdout=out)
    assert "removed: mf-session-orphan01" in out.getvalue()
    assert not exists(api, "mf-session-orphan01")
    assert exists(api, kept.container_name)  # an active session's container is never touched


def test_reconcile_run_beats_backs_off_and_healthz_reports_it(owner, gpus, docker_sessions,
                                                              client, settings):
    settings.RECONCILE_ENABLED = True
    settings.SESSION_POLL_INTERVAL_SECONDS = 30
    settings.SESSION_POLL_BACKOFF_MAX_SECONDS = 300
    cache.delete("sessions:reconcile:backoff")
    assert client.get("/healthz").status_code == 503  # no heartbeat yet
    assert reconcile.reconcile_run() is not None
    body = client.get("/healthz")
    assert body.status_code == 200 and body.json()["data"]["status"] == "ok"

    broken = DockerRuntime(base_url="unix:///nonexistent/docker.sock", timeout_s=2)
    override(container_runtime=broken)
    try:
        with pytest.raises(ContainerRuntimeError):
            reconcile.reconcile_run()
        state = reconcile.backoff_state()
        assert state["failures"] == 1
        assert reconcile.reconcile_run() is None  # waiting out the backoff
        with pytest.raises(ContainerRuntimeError):
            reconcile.reconcile_run(force=True)
        assert reconcile.backoff_state()["failures"] == 2
        # The wait doubles and is capped.
        waits = []
        for _ in range(6):
            with pytest.raises(ContainerRuntimeError):
                reconcile.reconcile_run(force=True)
            state = reconcile.backoff_state()
            waits.append(round(state["next_at"] - __import__("time").time()))
        assert waits[-1] <= 300 and waits[0] >= 200
    finally:
        override(container_runtime=docker_sessions)
    # The task wrapper swallows the failure (it is logged and counted) and recovery resets.
    assert reconcile.reconcile_run(force=True) is not None
    assert reconcile.backoff_state()["failures"] == 0
    from medforge.ops.models import Heartbeat

    Heartbeat.objects.filter(name="reconcile").update(at=timezone.now() - timezone.timedelta(seconds=91))
    stale = client.get("/healthz")
    assert stale.status_code == 503 and stale.json()["data"]["status"] == "degraded"


def test_reconcile_command_prints_the_pass(owner, gpus, local_pack, docker_sessions):
    running(owner)
    out = io.StringIO()
    call_command("reconcile", stdout=out)
    assert "1 active session(s), 1 container(s), 1 Docker call(s)" in out.getvalue()
