"""Start overhead (SPEC §9): POST /api/v2/external/sessions → `running`, through a real Celery
worker, against a bare Docker start of the same image until its port answers HTTP.

    .venv/bin/python bench/start.py [--trials 5]

Both sides talk to the same engine with the same image, start one container, and probe
`GET /` on the published loopback port at the same cadence as the platform's readiness probe
(DockerRuntime.ready_poll_interval_s). The platform side also does what a session needs:
the API request and allocation, the broker hop, the workspace, the container contract
(limits, mount, labels, network) and the database transitions. Trials alternate the
baselines and the platform; the ratio of medians is the target (≤ 1.10).

Two baselines are timed. The target's is SPEC §9's literally: the `docker run -d` command
(the CLI, as an operator would type it) on the same network with the IDE port on loopback,
then the port lookup and the probe. A stricter one, reported beside it, skips the CLI and
calls the engine's API directly (create, start, inspect): it shows what the platform costs
over the engine alone.

Uses its own database (medforge_bench_sessions), Redis database 10 as the broker, and its own
session networks (medforge-bench-ext/-int), removed at the end with every container it made.
"""
from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

BROKER = "redis://127.0.0.1:6379/10"
EXT, INT = "medforge-bench-ext", "medforge-bench-int"
WORKSPACES = tempfile.mkdtemp(prefix="medforge-bench-ws-")
ENV = {
    "SESSION_EXTERNAL_NETWORK": EXT, "SESSION_INTERNAL_NETWORK": INT,
    "WORKSPACE_ROOT": WORKSPACES, "CELERY_BROKER_URL": BROKER,
    "SESSION_START_TIMEOUT_SECONDS": "120", "SESSION_STOP_TIMEOUT_SECONDS": "2",
    "RECONCILE_ENABLED": "false", "GPU_STATIC_COUNT": "1",
}
os.environ.update(ENV)

from _django import remove_bench_docker, setup, target_line


def build_image() -> str:
    done = subprocess.run(["bash", str(REPO / "deploy/packs/local/build.sh")],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def answers(host: str, port: int) -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=1)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def cli_start(api, image: str, poll_s: float) -> float:
    """`docker run -d` (the CLI) on the same network with the IDE port on loopback; seconds
    until GET / answers."""
    t0 = time.perf_counter()
    done = subprocess.run(
        ["docker", "run", "-d", "--network", EXT, "-p", "127.0.0.1::8080",
         "--label", "medforge.bench=cli", image], capture_output=True, text=True, check=True)
    cid = done.stdout.strip()
    port = int(api.inspect_container(cid)["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"])
    while not answers("127.0.0.1", port):
        time.sleep(poll_s)
    elapsed = time.perf_counter() - t0
    api.remove_container(cid, force=True)
    return elapsed


def bare_start(api, image: str, poll_s: float) -> float:
    """Create + start the image on the same network with the IDE port on loopback; seconds
    until GET / answers."""
    t0 = time.perf_counter()
    created = api.create_container(
        image=image, detach=True, ports=[8080], labels={"medforge.bench": "bare"},
        host_config=api.create_host_config(port_bindings={8080: ("127.0.0.1",)},
                                           network_mode=EXT))
    api.start(created["Id"])
    port = int(api.inspect_container(created["Id"])["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"])
    while not answers("127.0.0.1", port):
        time.sleep(poll_s)
    elapsed = time.perf_counter() - t0
    api.remove_container(created["Id"], force=True)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    image = build_image()
    setup(db_name="medforge_bench_sessions")

    import docker
    import redis
    from django.conf import settings
    from django.db import connection
    from rest_framework.test import APIClient

    from medforge.accounts.models import User
    from runtime.factory import get_container_runtime
    from sessions_app import dispatch, services
    from sessions_app.models import Session

    redis.Redis.from_url(BROKER).flushdb()
    services.gpus_sync()
    services.pack_register_local(image_id=image)
    user = User.objects.create(email="start-bench@example.org", handle="start-bench")
    client = APIClient(HTTP_ORIGIN=f"http://{settings.BASE_DOMAIN}")
    client.force_authenticate(user)
    runtime = get_container_runtime()
    runtime.ensure_networks()
    poll_s = runtime.ready_poll_interval_s

    # CELERY_BROKER_URL is this bench's Redis database (set above, before settings load), so
    # the services' normal dispatch, with Celery's pooled producer connection, is measured.
    dispatch.set_sender(None)
    db = connection.settings_dict
    # Persistent database connections in the worker, as in production (DB_CONN_MAX_AGE=60).
    worker_env = {**os.environ, "MEDFORGE_ENV": "test", "LOG_LEVEL": "WARNING",
                  "DB_CONN_MAX_AGE": "60",
                  "DATABASE_URL": f"mysql://root@127.0.0.1:3306/{db['NAME']}"}
    log = open(Path(WORKSPACES) / "worker.log", "wb")  # noqa: SIM115 — the worker writes to it until teardown
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "medforge", "worker", "-Q", "default", "-c", "1",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING",
         "-n", f"bench-start-{os.getpid()}@%h"],
        cwd=REPO, env=worker_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_status(sid: str, want: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            status, error = Session.objects.filter(pk=sid).values_list("status", "error_message").get()
            if status == want:
                return
            if status == "error" or time.monotonic() > deadline:
                raise SystemExit(f"session {sid} is {status}: {error}\n"
                                 f"{(Path(WORKSPACES) / 'worker.log').read_text()[-2000:]}")
            time.sleep(0.005)

    def platform_start() -> float:
        t0 = time.perf_counter()
        resp = client.post("/api/v2/external/sessions", {}, format="json")
        assert resp.status_code == 201, resp.content
        sid = resp.json()["data"]["id"]
        wait_status(sid, "running")
        elapsed = time.perf_counter() - t0
        stop = client.post(f"/api/v2/external/sessions/{sid}/stop")
        assert stop.status_code == 202
        wait_status(sid, "stopped")
        return elapsed

    api = docker.APIClient(timeout=60, **docker.utils.kwargs_from_env())
    bare, cli, platform = [], [], []
    try:
        platform_start()  # warm-up: worker boot, first connections, networks
        bare_start(api, image, poll_s)
        cli_start(api, image, poll_s)
        for _ in range(args.trials):
            cli.append(cli_start(api, image, poll_s))
            bare.append(bare_start(api, image, poll_s))
            platform.append(platform_start())
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        remove_bench_docker(api, (EXT, INT), WORKSPACES)

    b, c, p = statistics.median(bare), statistics.median(cli), statistics.median(platform)
    ratio = p / c
    print(f"probe interval {poll_s * 1000:.0f} ms; trials={args.trials}")
    print("docker run (CLI) →HTTP (s):     " + " ".join(f"{x:.3f}" for x in cli))
    print("engine API create/start→HTTP (s): " + " ".join(f"{x:.3f}" for x in bare))
    print("POST sessions→running (s):      " + " ".join(f"{x:.3f}" for x in platform))
    print(f"median docker-run={c:.3f}s api={b:.3f}s platform={p:.3f}s; "
          f"platform over docker run {(p - c) * 1000:+.0f} ms, over the raw API "
          f"{(p - b) * 1000:+.0f} ms (ratio {p / b:.3f}, reported only)")
    print(target_line("start_platform_over_bare_ratio", ratio, "<=1.10", ratio <= 1.10))
    return 0


if __name__ == "__main__":
    sys.exit(main())
