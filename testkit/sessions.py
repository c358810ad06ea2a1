"""Session fixtures for every test that needs them: GPUs and packs, placed sessions, a recorder
for queued tasks, and a real Docker engine with the local pack for the lifecycle tests.

Docker isolation: other engineers' tests share this engine, so this run puts its session
containers on its own pair of networks (`medforge-st-<run>-ext/int`) and its runtime lists
only containers on those networks (still one labelled list call). Cleanup removes exactly the
managed containers on those networks, then the networks.
"""
from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from runtime import factory as runtime_factory
from runtime.containers import MANAGED_FILTER, DockerRuntime
from runtime.workspaces import DirectoryWorkspaces
from sessions_app import dispatch
from sessions_app.factories import GPUFactory, PackFactory
from sessions_app.models import TERMINAL_STATUSES, Session

REPO = Path(__file__).resolve().parents[1]
RUN_ID = uuid.uuid4().hex[:8]
EXT_NET = f"medforge-st-{RUN_ID}-ext"
INT_NET = f"medforge-st-{RUN_ID}-int"


# --------------------------------------------------------------------------- rows


@pytest.fixture
def queued():
    """Every task the services queue, as (task_name, session_id), instead of a broker send."""
    calls: list[tuple[str, str]] = []
    dispatch.set_sender(lambda name, sid: calls.append((name, sid)))
    yield calls
    dispatch.set_sender(None)


@pytest.fixture
def gpus(db):
    return [GPUFactory(index=i) for i in range(4)]


@pytest.fixture
def pack(db):
    return PackFactory(slug="default-pack", name="Default", is_default=True)


@pytest.fixture
def place_session(pack):
    """place_session(owner, status, gpu) → a Session row in that state (as the lifecycle
    would leave it: active sessions hold their GPU, terminal ones have released it)."""

    def make(owner, status, gpu, **extra):
        active = status not in TERMINAL_STATUSES
        now = timezone.now()
        return Session.objects.create(
            owner=owner, exposure=extra.pop("exposure", "external"), pack=pack, gpu=gpu,
            active_gpu=gpu if active else None, status=status,
            started_at=now if status != "starting" else None,
            stopped_at=None if active else now, **extra)

    return make


# --------------------------------------------------------------------------- Docker


def _docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False).returncode == 0
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A Docker engine that answers, started by scripts/ensure-system.sh if need be; a missing
    engine fails the test loudly, it is never skipped."""
    if _docker_answers():
        return
    done = subprocess.run(["bash", str(REPO / "scripts" / "ensure-system.sh")],
                          env={**os.environ, "MEDFORGE_SKIP_BROWSER": "1"},
                          capture_output=True, text=True, timeout=1200, check=False)
    if done.returncode != 0 or not _docker_answers():
        pytest.fail(f"no Docker engine: ensure-system.sh exit {done.returncode}\n"
                    f"{done.stdout[-1500:]}\n{done.stderr[-1500:]}")


@pytest.fixture(scope="session")
def local_image(docker_engine) -> str:
    """The local pack's image id (built once; scripts/test exports it)."""
    image = os.environ.get("MEDFORGE_LOCAL_PACK_IMAGE_ID", "").strip()
    if image.startswith("sha256:"):
        return image
    done = subprocess.run(["bash", str(REPO / "deploy" / "packs" / "local" / "build.sh")],
                          capture_output=True, text=True, timeout=1800, check=False)
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines or not lines[-1].startswith("sha256:"):
        pytest.fail(f"deploy/packs/local/build.sh failed:\n{done.stderr[-3000:]}")
    return lines[-1]


class ScopedDockerRuntime(DockerRuntime):
    """The real DockerRuntime, except that its single list call also filters on this test
    run's two session networks, so containers of concurrent test runs are never seen."""

    def list_managed(self):
        with self._errors("list session containers"):
            rows = self._api.containers(all=True, filters={
                "label": MANAGED_FILTER, "network": [self.external_network, self.internal_network]})
        return [self._info_from_list(row) for row in rows]


def scoped_runtime() -> ScopedDockerRuntime:
    return ScopedDockerRuntime(
        gpu_mode="none", publish_mode="loopback", cpu_limit=1.0, memory_limit="256m",
        pids_limit=128, shm_size="32m", external_network=EXT_NET, internal_network=INT_NET,
        ready_poll_interval_s=0.05,
    )


def remove_run_containers() -> int:
    import docker

    api = docker.APIClient(timeout=60, **docker.utils.kwargs_from_env())
    removed = 0
    try:
        for row in api.containers(all=True, filters={"label": MANAGED_FILTER,
                                                     "network": [EXT_NET, INT_NET]}):
            try:
                api.remove_container(row["Id"], force=True, v=True)
                removed += 1
            except docker.errors.NotFound:
                pass
    finally:
        api.close()
    return removed


@pytest.fixture(scope="session")
def run_networks(docker_engine):
    """This run's two session networks, removed (with their containers) at the very end."""
    yield EXT_NET, INT_NET
    remove_run_containers()
    subprocess.run(["docker", "network", "rm", EXT_NET, INT_NET], capture_output=True,
                   check=False)


@pytest.fixture(scope="module")
def docker_sessions(run_networks, local_image, tmp_path_factory):
    """Real Docker + directory workspaces wired into runtime.factory for one test module
    (settings and the factory are restored afterwards, so other apps' tests are unaffected).

    Yields the runtime; the workspace store is `runtime_factory.get_workspace_store()`.
    """
    workspace_root = tmp_path_factory.mktemp("workspaces")
    saved = {name: getattr(settings, name) for name in
             ("SESSION_EXTERNAL_NETWORK", "SESSION_INTERNAL_NETWORK", "WORKSPACE_ROOT",
              "SESSION_START_TIMEOUT_SECONDS")}
    settings.SESSION_EXTERNAL_NETWORK = EXT_NET
    settings.SESSION_INTERNAL_NETWORK = INT_NET
    settings.WORKSPACE_ROOT = str(workspace_root)
    settings.SESSION_START_TIMEOUT_SECONDS = 60
    runtime = scoped_runtime()
    runtime.ensure_networks()
    runtime_factory.reset()
    runtime_factory.override(container_runtime=runtime,
                             workspace_store=DirectoryWorkspaces(workspace_root))
    yield runtime
    remove_run_containers()
    runtime_factory.reset()
    for name, value in saved.items():
        setattr(settings, name, value)


@pytest.fixture
def local_pack(db, local_image):
    from sessions_app.services import pack_register_local

    return pack_register_local(image_id=local_image)


@pytest.fixture
def cleanup_containers(docker_sessions):
    remove_run_containers()
    yield
    remove_run_containers()


def wait_for(predicate, timeout_s: float = 30.0, interval_s: float = 0.05):
    """Poll until predicate() is truthy; returns its value or fails with the last value."""
    deadline = time.monotonic() + timeout_s
    value = predicate()
    while not value:
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s}s (last value {value!r})")
        time.sleep(interval_s)
        value = predicate()
    return value
