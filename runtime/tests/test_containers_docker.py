"""DockerRuntime against a real Docker engine and the local session image.

The image comes from deploy/packs/local/build.sh (see conftest.session_image). This host has
no NVIDIA container toolkit, so these runtimes use gpu_mode="none"; the nvidia device request
is checked in test_containers.py. Every container started here carries a `pytest-` session id
and is removed after each test, pass or fail. The IDE is reached only through the port Docker
publishes on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import urllib.request
import uuid
from pathlib import Path

import pytest

from runtime.containers import (
    ContainerConflict,
    ContainerStartError,
    DockerRuntime,
    ImageNotFound,
    NetworkMisconfigured,
    SessionContainerSpec,
)
from runtime.tests.conftest import TEST_SESSION_PREFIX, SessionNetworks
from runtime.workspaces import DirectoryWorkspaces

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800), pytest.mark.usefixtures("cleanup_containers")]

MEMORY = 512 * 1024 * 1024
SHM = 64 * 1024 * 1024
READY_TIMEOUT_S = 120


@pytest.fixture
def runtime(session_networks: SessionNetworks) -> DockerRuntime:
    rt = DockerRuntime(
        cpu_limit=1.5,
        memory_limit=MEMORY,
        pids_limit=256,
        shm_size=SHM,
        external_network=session_networks.external,
        internal_network=session_networks.internal,
    )
    yield rt
    rt.close()


def _spec(
    image: str, exposure: str = "external", workspace: str | None = None, **extra
) -> SessionContainerSpec:
    session_id = f"{TEST_SESSION_PREFIX}{uuid.uuid4()}"
    return SessionContainerSpec(
        session_id=session_id,
        slug="t" + uuid.uuid4().hex[:7],
        user_id=4242,
        exposure=exposure,
        image=image,
        gpu_index=0,
        gpu_uuid="GPU-00000000-0000-0000-0000-000000000000",
        gpu_id=1,
        workspace_host_path=workspace,
        **extra,
    )


def _inspect(kind: str, ref: str) -> dict:
    argv = ["docker", "inspect", ref] if kind == "container" else ["docker", kind, "inspect", ref]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


def test_external_session_follows_the_container_contract(
    runtime: DockerRuntime, session_image: str, tmp_path: Path, session_networks: SessionNetworks
) -> None:
    workspace = DirectoryWorkspaces(tmp_path / "ws").create(4242, "s1")
    data = tmp_path / "training"
    data.mkdir()
    (data / "train.csv").write_text("id,label\n1,0\n")
    spec = _spec(session_image, workspace=workspace.host_path, training_data_path=str(data))

    info = runtime.run(spec)
    assert info.name == f"mf-session-{spec.slug}"
    assert info.upstream and info.upstream.startswith("127.0.0.1:")
    ready = runtime.wait_ready(info.id, info.upstream, READY_TIMEOUT_S)
    assert ready.running and ready.upstream == info.upstream
    with urllib.request.urlopen(f"http://{info.upstream}/", timeout=10) as response:
        assert response.status < 500

    c = _inspect("container", info.id)
    assert c["Name"] == f"/mf-session-{spec.slug}"
    # Image labels (the pack's own medforge.pack.*) merge in; ours must all be there.
    labels = c["Config"]["Labels"]
    ours = {
        k: v for k, v in labels.items() if k.startswith("medforge.") and not k.startswith("medforge.pack.")
    }
    assert ours == {
        "medforge.session_id": spec.session_id,
        "medforge.slug": spec.slug,
        "medforge.user_id": "4242",
        "medforge.exposure": "external",
        "medforge.managed": "true",
        "medforge.gpu_id": "1",
    }
    env = dict(item.split("=", 1) for item in c["Config"]["Env"])
    assert env["NVIDIA_VISIBLE_DEVICES"] == "GPU-00000000-0000-0000-0000-000000000000"
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
    assert env["MEDFORGE_SESSION_ID"] == spec.session_id
    assert env["MEDFORGE_USER_ID"] == "4242"
    assert env["MEDFORGE_EXPOSURE"] == "external"
    assert env["MEDFORGE_GPU_ID"] == "1"
    assert c["Config"]["User"] == "1000:1000"

    mounts = {m["Destination"]: m for m in c["Mounts"]}
    assert set(mounts) == {"/workspace", "/data"}
    assert mounts["/workspace"]["Source"] == workspace.host_path and mounts["/workspace"]["RW"] is True
    assert mounts["/data"]["Source"] == str(data) and mounts["/data"]["RW"] is False
    assert not any("docker.sock" in m["Source"] for m in c["Mounts"])

    hc = c["HostConfig"]
    assert hc["CapDrop"] == ["ALL"] and not hc["CapAdd"]
    assert hc["SecurityOpt"] == ["no-new-privileges"]
    assert hc["Memory"] == MEMORY
    assert hc["NanoCpus"] == 1_500_000_000
    assert hc["PidsLimit"] == 256
    assert hc["ShmSize"] == SHM
    assert hc["Init"] is True
    assert hc["RestartPolicy"]["Name"] in ("no", "")
    assert not hc.get("DeviceRequests")  # gpu_mode="none": no toolkit on this host
    assert hc["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}
    assert hc["NetworkMode"] == session_networks.external
    assert set(c["NetworkSettings"]["Networks"]) == {session_networks.external}
    assert _inspect("network", session_networks.external)["Internal"] is False

    # The IDE's uid can write the workspace; the training data is read-only.
    written = subprocess.run(["docker", "exec", info.id, "sh", "-c", "id -u; touch /workspace/hello"],
                             capture_output=True, text=True)
    assert written.returncode == 0, written.stderr
    assert written.stdout.split()[0] == "1000"
    assert os.stat(Path(workspace.host_path) / "hello").st_uid == 1000
    refused = subprocess.run(["docker", "exec", info.id, "touch", "/data/x"], capture_output=True, text=True)
    assert refused.returncode != 0


def test_internal_session_is_on_an_internal_network(
    runtime: DockerRuntime, session_image: str, tmp_path: Path, session_networks: SessionNetworks
) -> None:
    workspace = DirectoryWorkspaces(tmp_path / "ws").create(4242, "s2")
    info = runtime.run(_spec(session_image, exposure="internal", workspace=workspace.host_path))
    c = _inspect("container", info.id)
    assert set(c["NetworkSettings"]["Networks"]) == {session_networks.internal}
    assert _inspect("network", session_networks.internal)["Internal"] is True
    assert c["Config"]["Labels"]["medforge.exposure"] == "internal"
    # Docker publishes no port for a container on an internal network; its upstream is its
    # address there (for the edge proxy), never a loopback port.
    assert not c["NetworkSettings"]["Ports"]
    address = c["NetworkSettings"]["Networks"][session_networks.internal]["IPAddress"]
    assert info.upstream == f"{address}:8080"


def test_wait_ready_reports_a_container_that_exits(runtime: DockerRuntime, exiting_image: str) -> None:
    info = runtime.run(_spec(exiting_image))
    with pytest.raises(ContainerStartError) as caught:
        runtime.wait_ready(info.id, info.upstream, 60)
    message = str(caught.value)
    assert "exited with code 3" in message
    assert "medforge-boom-marker" in message


def test_wait_ready_times_out_when_the_ide_never_answers(runtime: DockerRuntime, silent_image: str) -> None:
    info = runtime.run(_spec(silent_image))
    with pytest.raises(ContainerStartError, match=r"did not answer HTTP on 127\.0\.0\.1:\d+ within 2s"):
        runtime.wait_ready(info.id, info.upstream, 2)


def test_stop_and_remove_is_idempotent(runtime: DockerRuntime, session_image: str) -> None:
    info = runtime.run(_spec(session_image))
    assert runtime.stop_and_remove(info.id, timeout_s=5) is True
    assert runtime.stop_and_remove(info.id, timeout_s=5) is False
    assert runtime.inspect(info.id) is None
    assert runtime.remove_by_name(info.name) is False


def test_retried_run_reuses_its_container_and_refuses_another_sessions(
    runtime: DockerRuntime, session_image: str
) -> None:
    spec = _spec(session_image)
    first = runtime.run(spec)
    again = runtime.run(spec)
    assert again.id == first.id and again.upstream == first.upstream
    intruder = SessionContainerSpec(**{**spec.__dict__, "session_id": f"{TEST_SESSION_PREFIX}{uuid.uuid4()}"})
    with pytest.raises(ContainerConflict, match=spec.session_id):
        runtime.run(intruder)
    assert runtime.remove_by_name(first.name) is True


def test_missing_image_is_image_not_found(runtime: DockerRuntime) -> None:
    with pytest.raises(ImageNotFound, match="not on the Docker host"):
        runtime.run(_spec("medforge-test/no-such-image:never"))


def test_missing_workspace_fails_to_start_and_leaves_nothing(
    runtime: DockerRuntime, session_image: str, tmp_path: Path
) -> None:
    spec = _spec(session_image, workspace=str(tmp_path / "not-created"))
    with pytest.raises(ContainerStartError):
        runtime.run(spec)
    assert runtime.inspect(spec.container_name) is None


def test_list_managed_is_one_api_call(runtime: DockerRuntime, session_image: str) -> None:
    started = [runtime.run(_spec(session_image)) for _ in range(3)]
    started.append(runtime.run(_spec(session_image, exposure="internal")))
    stopped = runtime.run(_spec(session_image))
    subprocess.run(["docker", "stop", "-t", "1", stopped.id], check=True, capture_output=True)

    before = runtime.api_calls
    listed = runtime.list_managed()
    assert runtime.api_calls - before == 1

    by_id = {c.id: c for c in listed}
    for info in started:
        assert by_id[info.id].running
        assert by_id[info.id].upstream == info.upstream
        assert by_id[info.id].session_id == info.session_id
        assert by_id[info.id].name == info.name
    assert by_id[stopped.id].status == "exited"
    assert by_id[stopped.id].exit_code is not None
    assert by_id[stopped.id].upstream is None


def test_api_calls_counts_every_request(runtime: DockerRuntime, session_image: str) -> None:
    assert runtime.ping()
    runtime.ensure_networks()
    before = runtime.api_calls
    info = runtime.run(_spec(session_image))
    assert runtime.api_calls - before == 3  # create, start, one inspect for port and address
    before = runtime.api_calls
    runtime.stop_and_remove(info.id, timeout_s=2)
    assert runtime.api_calls - before == 2


def test_ensure_networks_is_idempotent_and_race_safe(session_networks: SessionNetworks) -> None:
    ext, internal = session_networks.name("race-ext"), session_networks.name("race-int")
    runtimes = [DockerRuntime(external_network=ext, internal_network=internal) for _ in range(6)]
    errors: list[BaseException] = []

    def ensure(rt: DockerRuntime) -> None:
        try:
            rt.ensure_networks()
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=ensure, args=(rt,)) for rt in runtimes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    runtimes[0].ensure_networks()
    names = subprocess.run(["docker", "network", "ls", "--format", "{{.Name}}"], capture_output=True,
                           text=True, check=True).stdout.split()
    assert names.count(ext) == 1 and names.count(internal) == 1
    assert _inspect("network", internal)["Internal"] is True
    assert _inspect("network", ext)["Internal"] is False


def test_a_non_internal_network_under_the_internal_name_is_refused(session_networks: SessionNetworks) -> None:
    imposter = session_networks.name("imposter")
    subprocess.run(["docker", "network", "create", imposter], check=True, capture_output=True)
    rt = DockerRuntime(external_network=session_networks.name("imposter-ext"), internal_network=imposter)
    with pytest.raises(NetworkMisconfigured, match="internal=True"):
        rt.ensure_networks()
