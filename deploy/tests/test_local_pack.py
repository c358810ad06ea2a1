"""The local session pack built for real: deploy/packs/local/build.sh produces
medforge/pack-local:dev without a registry, and a container of it behaves like a session's IDE
(answers on 8080, runs as uid 1000, writes into the mounted /workspace), also under the
least-privilege flags the platform uses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

BUILD_SH = Path(__file__).resolve().parents[1] / "packs" / "local" / "build.sh"
IMAGE = "medforge/pack-local:dev"


def _docker(*args: str, timeout: float = 60) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def _build() -> tuple[str, float, str]:
    started = time.monotonic()
    result = subprocess.run(["bash", str(BUILD_SH)], capture_output=True, text=True, timeout=900)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, f"build.sh failed:\n{result.stderr[-4000:]}"
    last = result.stdout.strip().splitlines()[-1]
    return last, elapsed, result.stderr


def _get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, resp.read()


@pytest.fixture(scope="module")
def image_id() -> str:
    image_id, _, _ = _build()
    return image_id


@pytest.fixture
def container(image_id, tmp_path):
    """Run the pack like a session: workspace owned by 1000 mounted at /workspace, loopback port."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    if os.geteuid() == 0:
        os.chown(workspace, 1000, 1000)
    else:
        workspace.chmod(0o777)
    session_id = str(uuid.uuid4())
    name = f"mf-test-pack-{session_id[:8]}"
    cid = _docker(
        "run", "-d", "--name", name,
        "--label", "medforge.test=deploy-tests",
        "-p", "127.0.0.1::8080",
        "-e", f"MEDFORGE_SESSION_ID={session_id}",
        "-v", f"{workspace}:/workspace",
        # The session container's least-privilege flags (SPEC §4): the pack must work under them.
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--pids-limit", "256", "--memory", "512m", "--shm-size", "64m",
        image_id,
    )  # fmt: skip
    try:
        host_port = _docker("port", cid, "8080/tcp").splitlines()[0]
        match = re.fullmatch(r"127\.0\.0\.1:(\d+)", host_port)
        assert match, host_port
        base = f"http://127.0.0.1:{match.group(1)}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(base + "/", timeout=2)[0] == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                logs = subprocess.run(["docker", "logs", cid], capture_output=True, text=True).stdout
                pytest.fail(f"the pack did not answer within 30 s; logs:\n{logs}")
            time.sleep(0.1)
        yield {"id": cid, "base": base, "session_id": session_id, "workspace": workspace}
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, timeout=60)


def test_build_prints_the_content_addressed_image_id_last(image_id):
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image_id)
    assert _docker("image", "inspect", "--format", "{{.Id}}", IMAGE) == image_id
    config = json.loads(_docker("image", "inspect", "--format", "{{json .Config}}", image_id))
    assert config["User"] == "1000:1000"
    assert config["WorkingDir"] == "/workspace"
    assert "8080/tcp" in config["ExposedPorts"]
    assert config["Cmd"] == ["python3", "/opt/medforge/ide.py"]
    assert re.fullmatch(r"[0-9a-f]{64}", config["Labels"]["medforge.pack.source-sha256"])


def test_second_build_reuses_the_image(image_id):
    again, elapsed, stderr = _build()
    assert again == image_id
    assert "up to date" in stderr


def test_a_derived_image_carrying_the_label_is_not_taken_for_the_pack(image_id):
    """Tests build variants FROM the pack (another entrypoint); they inherit its label, and a
    rebuild must still hand out the real IDE image, never the variant."""
    tag = "medforge-test/derived-from-pack:pytest"
    build = subprocess.run(
        ["docker", "build", "-q", "-t", tag, "-"],
        input=f'FROM {image_id}\nENTRYPOINT ["/bin/sh", "-c", "exec sleep 600"]\nCMD []\n',
        capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    try:
        _docker("tag", tag, IMAGE)  # the variant now even holds the pack's tag
        again, _, _ = _build()
        assert again != _docker("image", "inspect", "--format", "{{.Id}}", tag)
        assert _docker("image", "inspect", "--format", "{{.Id}}", IMAGE) == again
        config = json.loads(_docker("image", "inspect", "--format", "{{json .Config}}", IMAGE))
        assert config["Cmd"] == ["python3", "/opt/medforge/ide.py"]
        assert not config.get("Entrypoint")
    finally:
        _docker("tag", image_id, IMAGE)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def test_container_serves_the_ide_as_uid_1000(container):
    status, page = _get(container["base"] + "/")
    assert status == 200
    assert b"<title>MedForge stand-in IDE</title>" in page
    assert container["session_id"].encode() in page

    info = json.loads(_get(container["base"] + "/__info")[1])
    assert (info["uid"], info["gid"]) == (1000, 1000)
    assert info["workspace"] == "/workspace"
    assert _docker("exec", container["id"], "id", "-u") == "1000"
    assert _docker("exec", container["id"], "stat", "-c", "%u:%g", "/workspace") == "1000:1000"


def test_writes_land_in_the_mounted_workspace(container):
    body = b"persisted across the session\n"
    req = urllib.request.Request(container["base"] + "/__write?name=proof.txt", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 201
    written = container["workspace"] / "proof.txt"
    assert written.read_bytes() == body
    assert written.stat().st_uid == 1000


def test_stop_is_prompt(container):
    # SIGTERM is handled by the IDE itself, so a stop does not wait for Docker's 10 s kill.
    started = time.monotonic()
    _docker("stop", "-t", "10", container["id"])
    assert time.monotonic() - started < 5
    assert _docker("inspect", "--format", "{{.State.ExitCode}}", container["id"]) == "0"
