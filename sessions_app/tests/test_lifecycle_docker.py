"""The session lifecycle on a real Docker engine with the local pack: start → running with the
container contract visible in `docker inspect`, stop → container gone and snapshot listed,
failures, repeats, and restore. Tasks run in-process here (`.apply()`); the Celery worker
end to end is in test_worker_e2e.py. GPUs are the static test list (no NVIDIA here)."""
from __future__ import annotations

import http.client as httpclient
import json
import subprocess
from pathlib import Path

import docker
import pytest

from runtime.containers import DockerRuntime
from runtime.factory import get_workspace_store
from sessions_app import lifecycle, services, tasks
from sessions_app.factories import PackFactory
from sessions_app.models import Session, Snapshot
from testkit.sessions import EXT_NET, INT_NET

pytestmark = [pytest.mark.docker, pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def api():
    client = docker.APIClient(timeout=60, **docker.utils.kwargs_from_env())
    yield client
    client.close()


def http(upstream: str, method: str = "GET", path: str = "/", body: bytes | None = None):
    host, port = upstream.rsplit(":", 1)
    conn = httpclient.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def start(session: Session) -> Session:
    result = tasks.start_session.apply(args=[str(session.id)]).get()
    session.refresh_from_db()
    assert session.status == "running", (result, session.error_message)
    return session


def stop(session: Session, by) -> Session:
    services.session_request_stop(session=session, by=by)
    tasks.stop_session.apply(args=[str(session.id)]).get()
    session.refresh_from_db()
    return session


def test_training_data_is_the_only_data_root_mounted_and_read_only(
        owner, gpus, local_pack, docker_sessions, api, cleanup_containers, settings, tmp_path):
    training = tmp_path / "training"
    training.mkdir()
    (training / "train.csv").write_text("id,label\n1,0\n")
    training.chmod(0o755)
    settings.TRAINING_DATA_ROOT = str(training)
    session = start(services.session_create(user=owner, exposure="external"))
    mounts = {m["Destination"]: m for m in api.inspect_container(session.container_name)["Mounts"]}
    assert set(mounts) == {"/workspace", "/data"}
    assert mounts["/data"]["Source"] == str(training) and mounts["/data"]["RW"] is False
    for root in (settings.PUBLIC_EVAL_DATA_ROOT, settings.TEST_HOLDOUTS_DIR):
        assert all(not m["Source"].startswith(root) for m in mounts.values())


def kinds(session: Session) -> list[str]:
    return list(session.events.values_list("kind", flat=True))


def test_external_session_runs_under_the_container_contract_then_stops_with_a_snapshot(
        owner, gpus, local_pack, docker_sessions, api, cleanup_containers, settings, tmp_path):
    settings.TRAINING_DATA_ROOT = str(tmp_path / "no-training-data-here")
    session = services.session_create(user=owner, exposure="external")
    session = start(session)
    assert kinds(session) == ["created", "workspace_ready", "container_started", "running"]
    assert session.upstream.startswith("127.0.0.1:") and session.started_at
    assert http(session.upstream)[0] == 200

    data = api.inspect_container(session.container_name)
    assert data["Id"] == session.container_id
    labels = data["Config"]["Labels"]
    assert labels["medforge.session_id"] == str(session.id)
    assert labels["medforge.slug"] == session.slug
    assert labels["medforge.user_id"] == str(owner.pk)
    assert labels["medforge.exposure"] == "external"
    assert labels["medforge.managed"] == "true"
    env = dict(item.split("=", 1) for item in data["Config"]["Env"])
    assert env["NVIDIA_VISIBLE_DEVICES"] == gpus[0].uuid
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
    assert env["MEDFORGE_SESSION_ID"] == str(session.id)
    assert env["MEDFORGE_USER_ID"] == str(owner.pk)
    assert env["MEDFORGE_EXPOSURE"] == "external"
    assert env["MEDFORGE_GPU_ID"] == "0"
    assert data["Config"]["User"] == "1000:1000"
    mounts = data["Mounts"]
    assert [(m["Destination"], m["Source"], m["RW"]) for m in mounts] == [
        ("/workspace", session.workspace_path, True)]
    host = data["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["PidsLimit"] == 128 and host["Memory"] == 256 * 1024 ** 2
    assert host["NanoCpus"] == 10 ** 9 and host["ShmSize"] == 32 * 1024 ** 2
    assert not host.get("Binds") and "/var/run/docker.sock" not in json.dumps(data)
    assert list(data["NetworkSettings"]["Networks"]) == [EXT_NET]
    binding = data["NetworkSettings"]["Ports"]["8080/tcp"][0]
    assert binding["HostIp"] == "127.0.0.1"
    assert session.upstream == f"127.0.0.1:{binding['HostPort']}"

    # The user's work lands in the workspace, which the stop snapshots.
    status, _ = http(session.upstream, "POST", "/__write?name=notes.txt", b"hello workspace")
    assert status == 201
    session = stop(session, owner)
    assert session.status == "stopped" and session.active_gpu is None and session.stopped_at
    assert api.containers(all=True, filters={"name": session.container_name}) == []
    snapshot = Snapshot.objects.get(session=session)
    assert snapshot.kind == "stop" and snapshot.name.startswith("stop-")
    assert snapshot.full_name == f"{session.workspace_id}@{snapshot.name}"
    listed = get_workspace_store().list_snapshots(session.workspace_id)
    assert [s.full_name for s in listed] == [snapshot.full_name]
    copy = Path(get_workspace_store().snapshot_root) / str(owner.pk) / f"{session.id}@{snapshot.name}"
    assert (copy / "notes.txt").read_bytes() == b"hello workspace"
    assert kinds(session)[-3:] == ["stop_requested", "container_removed", "stopped"]

    # Both tasks again: nothing changes, nothing breaks.
    assert tasks.stop_session.apply(args=[str(session.id)]).get() == "skipped (stopped)"
    assert tasks.start_session.apply(args=[str(session.id)]).get() == "skipped (stopped)"
    assert Snapshot.objects.filter(session=session).count() == 1


def test_gpu_device_request_names_exactly_the_sessions_gpu(owner, gpus, local_pack):
    """This host has no NVIDIA toolkit, so Docker would refuse the request; check what the
    runtime sends in nvidia mode for the allocated GPU instead."""
    session = services.session_create(user=owner, exposure="external")
    spec = lifecycle._spec(session, "/tmp/ws")
    args = DockerRuntime(gpu_mode="nvidia").container_create_args(spec)
    (request,) = args["host_config"]["device_requests"]
    assert request["Driver"] == "nvidia" and request["DeviceIDs"] == [gpus[0].uuid]
    assert request["Capabilities"] == [["gpu"]]


def test_internal_session_is_on_the_internal_no_egress_network(entitled, gpus, local_pack,
                                                              docker_sessions, api,
                                                              cleanup_containers):
    session = start(services.session_create(user=entitled, exposure="internal"))
    data = api.inspect_container(session.container_id)
    assert list(data["NetworkSettings"]["Networks"]) == [INT_NET]
    assert api.inspect_network(INT_NET)["Internal"] is True
    assert not data["NetworkSettings"]["Ports"].get("8080/tcp")  # nothing published
    address = data["NetworkSettings"]["Networks"][INT_NET]["IPAddress"]
    assert session.upstream == f"{address}:8080"
    assert http(session.upstream)[0] == 200
    assert stop(session, entitled).status == "stopped"


def _exiting_image(base: str) -> str:
    created = subprocess.run(["docker", "create", base], capture_output=True, text=True, check=True)
    cid = created.stdout.strip()
    try:
        done = subprocess.run(
            ["docker", "commit", "--change", 'CMD ["/bin/sh", "-c", "echo boom-marker >&2; exit 3"]',
             cid], capture_output=True, text=True, check=True)
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, check=False)
    return done.stdout.strip()


def test_failed_start_marks_error_frees_the_gpu_and_leaves_no_container(
        owner, stranger, gpus, local_image, docker_sessions, api, cleanup_containers):
    image = _exiting_image(local_image)
    try:
        PackFactory(slug="broken", image=image, is_default=True)
        session = services.session_create(user=owner, exposure="external")
        assert tasks.start_session.apply(args=[str(session.id)]).get() == "error"
        session.refresh_from_db()
        assert session.status == "error" and session.active_gpu is None
        assert "exited with code 3" in session.error_message and "boom-marker" in session.error_message
        assert api.containers(all=True, filters={"name": session.container_name}) == []
        assert kinds(session)[-1] == "error"
        # The GPU is free again for someone else.
        assert services.session_create(user=stranger, exposure="external").gpu.index == 0
    finally:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=False)


def test_start_redelivered_after_a_worker_died_mid_start_reuses_the_container(
        owner, gpus, local_pack, docker_sessions, api, cleanup_containers):
    """A worker killed after `docker run` but before marking running: Celery redelivers the
    task (acks_late) and the second run adopts the same container instead of leaking one."""
    session = services.session_create(user=owner, exposure="external")
    workspace = get_workspace_store().create(owner.pk, str(session.id))
    docker_sessions.run(lifecycle._spec(session, workspace.host_path))  # the dead worker's work
    session = start(session)
    found = api.containers(all=True, filters={"label": f"medforge.session_id={session.id}"})
    assert len(found) == 1 and found[0]["Id"] == session.container_id


def test_stop_while_starting_and_a_late_start_task_leak_nothing(owner, gpus, local_pack,
                                                               docker_sessions, api,
                                                               cleanup_containers):
    session = services.session_create(user=owner, exposure="external")
    session = stop(session, owner)  # before the start task ever ran
    assert session.status == "stopped" and session.active_gpu is None
    assert kinds(session)[-1] == "stopped"
    assert tasks.start_session.apply(args=[str(session.id)]).get() == "skipped (stopped)"
    assert api.containers(all=True, filters={"name": session.container_name}) == []


def test_a_stop_that_lands_during_the_start_removes_the_new_container(
        owner, gpus, local_pack, docker_sessions, api, cleanup_containers, monkeypatch):
    session = services.session_create(user=owner, exposure="external")
    real_wait = docker_sessions.wait_ready

    def wait_then_user_stops(container_id, upstream, timeout_s):
        info = real_wait(container_id, upstream, timeout_s)
        services.session_request_stop(session=session, by=owner)
        return info

    monkeypatch.setattr(docker_sessions, "wait_ready", wait_then_user_stops)
    assert tasks.start_session.apply(args=[str(session.id)]).get() == "abandoned"
    assert api.containers(all=True, filters={"name": session.container_name}) == []
    session.refresh_from_db()
    assert session.status == "stopping"
    monkeypatch.undo()
    assert tasks.stop_session.apply(args=[str(session.id)]).get() == "stopped"


def test_restore_starts_a_new_session_with_the_snapshot_files(owner, gpus, local_pack,
                                                             docker_sessions, cleanup_containers):
    first = start(services.session_create(user=owner, exposure="external"))
    assert http(first.upstream, "POST", "/__write?name=model.txt", b"weights v1")[0] == 201
    first = stop(first, owner)
    snapshot = Snapshot.objects.get(session=first)

    second = start(services.session_restore(snapshot=snapshot, by=owner))
    assert second.restored_from_id == snapshot.id and second.id != first.id
    status, body = http(second.upstream, "GET", "/__read?name=model.txt")
    assert (status, body) == (200, b"weights v1")
    assert "restored from snapshot" in second.events.get(kind="workspace_ready").message
    stop(second, owner)
