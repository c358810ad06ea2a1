"""Fixtures for tests that need a real Docker engine: the engine itself, the local session
image, derived images that misbehave on purpose, and cleanup of everything the tests start.

Test containers are recognised by their session id prefix (`pytest-`), so a developer's own
running sessions on the same engine are never touched.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ENSURE_SYSTEM = REPO_ROOT / "scripts" / "ensure-system.sh"
PACK_BUILD = REPO_ROOT / "deploy" / "packs" / "local" / "build.sh"
TEST_SESSION_PREFIX = "pytest-"
TEST_IMAGE_REPO = "medforge-test"


def _docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=15).returncode == 0
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A Docker engine that answers; started the way the project starts it when it does not."""
    if _docker_answers():
        return
    if ENSURE_SYSTEM.exists():
        done = subprocess.run(
            ["bash", str(ENSURE_SYSTEM)],
            env={**os.environ, "MEDFORGE_SKIP_BROWSER": "1"},
            capture_output=True, text=True, timeout=900,
        )
        if done.returncode != 0:
            pytest.fail(f"scripts/ensure-system.sh failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    else:
        with open("/var/log/medforge-dockerd.log", "ab") as log:
            subprocess.Popen(
                ["dockerd", "--storage-driver=overlay2", "--iptables=false"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
            )
    deadline = time.monotonic() + 60
    while not _docker_answers():
        if time.monotonic() > deadline:
            pytest.fail("the Docker engine did not answer within 60s (see /var/log/medforge-dockerd.log)")
        time.sleep(1)


def _docker_api():
    import docker

    return docker.APIClient(timeout=120, **docker.utils.kwargs_from_env())


# --------------------------------------------------------------------------- images


def _is_static_elf(path: Path) -> bool:
    """True for a 64-bit little-endian ELF without a PT_INTERP header (no dynamic loader)."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return all(
        struct.unpack_from("<I", data, phoff + i * phentsize)[0] != 3  # PT_INTERP
        for i in range(phnum)
    )


def _static_busybox(workdir: Path) -> Path:
    candidates = [
        os.environ.get("MEDFORGE_TEST_BUSYBOX"), "/bin/busybox", "/usr/bin/busybox", shutil.which("busybox")
    ]
    for candidate in candidates:
        if candidate and _is_static_elf(Path(candidate)):
            return Path(candidate)
    # Debian's busybox-static, unpacked (not installed) so the host stays as it was.
    done = subprocess.run(
        ["apt-get", "download", "busybox-static"], cwd=workdir, capture_output=True, text=True
    )
    debs = list(workdir.glob("busybox-static_*.deb"))
    if done.returncode != 0 or not debs:
        pytest.fail(
            "deploy/packs/local/build.sh does not exist and no static busybox was found for the "
            f"stand-in session image (install busybox-static): {done.stderr.strip()}"
        )
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(workdir / "pkg")], check=True)
    return workdir / "pkg" / "bin" / "busybox"


def _busybox_http_image() -> str:
    """A tiny stand-in session image: busybox httpd serving on 8080, built without a registry."""
    with tempfile.TemporaryDirectory() as tmp:
        busybox = _static_busybox(Path(tmp))
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for folder in ("bin", "www", "tmp", "workspace", "data"):
                info = tarfile.TarInfo(folder)
                info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
                tar.addfile(info)
            tar.add(str(busybox), arcname="bin/busybox")
            for applet in ("sh", "httpd", "sleep", "touch", "id", "cat", "echo", "ls"):
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
            page = b"<html>medforge stand-in IDE</html>\n"
            info = tarfile.TarInfo("www/index.html")
            info.size, info.mode = len(page), 0o644
            tar.addfile(info, io.BytesIO(page))
        tag = f"{TEST_IMAGE_REPO}/busybox-httpd:pytest"
        done = subprocess.run(
            ["docker", "import", "-c", 'CMD ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]', "-", tag],
            input=buffer.getvalue(), capture_output=True, timeout=120,
        )
        if done.returncode != 0:
            pytest.fail(f"docker import of the stand-in image failed: {done.stderr.decode()}")
        return done.stdout.decode().strip().splitlines()[-1]


@pytest.fixture(scope="session")
def session_image(docker_engine: None) -> str:
    """The local session image: deploy/packs/local/build.sh's image ID when that script exists
    (the real pack, IDE on 8080), else a busybox stand-in serving HTTP on 8080.

    MEDFORGE_TEST_SESSION_IMAGE names another image to use instead (any image whose default
    command serves HTTP on 8080 as uid 1000 and has /bin/sh).
    """
    override = os.environ.get("MEDFORGE_TEST_SESSION_IMAGE")
    if override:
        return override
    if PACK_BUILD.exists():
        done = subprocess.run(
            ["bash", str(PACK_BUILD)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800
        )
        lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
        if done.returncode != 0 or not lines or not lines[-1].startswith("sha256:"):
            pytest.fail(
                f"deploy/packs/local/build.sh failed (exit {done.returncode}):\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return lines[-1]
    return _busybox_http_image()


def _derived_image(base: str, entrypoint: list[str], tag: str) -> str:
    """`base` with another entrypoint, built through the daemon (no registry needed)."""
    import json

    dockerfile = f"FROM {base}\nENTRYPOINT {json.dumps(entrypoint)}\nCMD []\n".encode()
    api = _docker_api()
    try:
        for _ in api.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True, forcerm=True, decode=True):
            pass
        return api.inspect_image(tag)["Id"]
    finally:
        api.close()


@pytest.fixture(scope="session")
def exiting_image(session_image: str) -> Iterator[str]:
    """Prints a marker and exits 3 at once: a session whose IDE crashes on start."""
    tag = f"{TEST_IMAGE_REPO}/exits:pytest"
    yield _derived_image(session_image, ["/bin/sh", "-c", "echo medforge-boom-marker >&2; exit 3"], tag)
    subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


@pytest.fixture(scope="session")
def silent_image(session_image: str) -> Iterator[str]:
    """Runs but never listens on 8080: a session whose IDE hangs."""
    tag = f"{TEST_IMAGE_REPO}/silent:pytest"
    yield _derived_image(session_image, ["/bin/sh", "-c", "exec sleep 600"], tag)
    subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


# --------------------------------------------------------------------------- cleanup


def remove_test_containers() -> list[str]:
    """Force-remove every managed container whose session id marks it as a test's."""
    api = _docker_api()
    removed = []
    try:
        for row in api.containers(all=True, filters={"label": "medforge.managed=true"}):
            if (row.get("Labels") or {}).get("medforge.session_id", "").startswith(TEST_SESSION_PREFIX):
                try:
                    api.remove_container(row["Id"], force=True, v=True)
                    removed.append(row["Id"])
                except Exception:
                    pass
    finally:
        api.close()
    return removed


class SessionNetworks:
    """Per-run session network names, so tests never reshape a running platform's networks."""

    def __init__(self) -> None:
        self.run_id = uuid.uuid4().hex[:8]
        self.external = self.name("ext")
        self.internal = self.name("int")

    def name(self, suffix: str) -> str:
        return f"medforge-pytest-{self.run_id}-{suffix}"


@pytest.fixture(scope="session")
def session_networks(docker_engine: None) -> Iterator[SessionNetworks]:
    networks = SessionNetworks()
    yield networks
    remove_test_containers()
    api = _docker_api()
    try:
        for net in api.networks():
            if net.get("Name", "").startswith(f"medforge-pytest-{networks.run_id}-"):
                with contextlib.suppress(Exception):
                    api.remove_network(net["Id"])
    finally:
        api.close()


@pytest.fixture
def cleanup_containers(docker_engine: None) -> Iterator[None]:
    """Remove the test's containers afterwards, whether it passed or failed."""
    yield
    remove_test_containers()
