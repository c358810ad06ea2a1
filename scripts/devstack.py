"""The local platform in one command: web (gunicorn), Celery worker, Celery beat and Caddy.

Runs on embedded defaults (MEDFORGE_ENV=local: SQLite in WAL mode, the filesystem Celery
broker, directory workspaces, GPUs declared in settings) and the local Docker engine. Prepares
the database, the demo data and the local session pack first, prints the URLs, and stops every
process on Ctrl-C (or when any one of them dies).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
EDGE_PORT = int(os.environ.get("MEDFORGE_EDGE_PORT", "8000"))
APP_PORT = int(os.environ.get("MEDFORGE_APP_PORT", "8001"))
DEMO_PASSWORD = os.environ.get("MEDFORGE_DEMO_PASSWORD", "medforge-demo-2026")


def env() -> dict:
    e = dict(os.environ)
    e.update(
        MEDFORGE_ENV="local",
        DJANGO_SETTINGS_MODULE="medforge.settings",
        PUBLIC_PORT=str(EDGE_PORT),
        MEDFORGE_EDGE_PORT=str(EDGE_PORT),
        MEDFORGE_APP_UPSTREAM=f"127.0.0.1:{APP_PORT}",
        PYTHONUNBUFFERED="1",
        METRICS_MULTIPROC_ROOT=str(ROOT / "var" / "metrics"),
    )
    e.setdefault("RECONCILE_ENABLED", "true")
    e.setdefault("SESSION_POLL_INTERVAL_SECONDS", "15")
    return e


def manage(*args: str) -> None:
    print(f"==> manage.py {' '.join(args)}", flush=True)
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env(), check=True)


def prepare() -> str:
    subprocess.run(["bash", "scripts/ensure-system.sh"], cwd=ROOT, check=True,
                   env={**os.environ, "MEDFORGE_SKIP_BROWSER": "1"})
    subprocess.run(["bash", "scripts/bootstrap.sh"], cwd=ROOT, check=True)
    print("==> building the local session pack (cached after the first time)", flush=True)
    out = subprocess.run(["bash", "deploy/packs/local/build.sh"], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    image_id = out.stdout.strip().splitlines()[-1]
    # The embedded filesystem broker needs its folders before worker and beat start.
    for sub in ("celery/queue", "celery/processed", "metrics"):
        (ROOT / "var" / sub).mkdir(parents=True, exist_ok=True)
    manage("migrate", "--noinput")
    manage("gpus", "sync")
    manage("packs", "register-local", "--image-id", image_id)
    manage("seed")
    manage("demo_users", "--password", DEMO_PASSWORD)
    return image_id


def start(procs: list, name: str, cmd: list[str]) -> None:
    print(f"==> starting {name}: {' '.join(cmd)}", flush=True)
    # Each process family writes its own Prometheus multiprocess files; /metrics merges them.
    metrics_dir = ROOT / "var" / "metrics" / name
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    proc_env = env() | {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    procs.append((name, subprocess.Popen(cmd, cwd=ROOT, env=proc_env, start_new_session=True)))


def stop_all(procs: list) -> None:
    # SIGTERM to each leader only: gunicorn and Celery then shut their own children down
    # cleanly (a group-wide signal makes Celery report its pool as killed). Stragglers of a
    # process group are killed after the grace period.
    for _, p in procs:
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 15
    for _, p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def main() -> int:
    prepare()
    procs: list = []
    celery = [PY, "-m", "celery", "-A", "medforge"]
    var = ROOT / "var"
    try:
        start(procs, "web", [PY, "-m", "gunicorn", "medforge.wsgi", "-b", f"127.0.0.1:{APP_PORT}",
                             "--workers", "2", "--threads", "4", "--access-logfile", "-"])
        start(procs, "worker", celery + ["worker", "-Q", "default,scoring", "-c", "2",
                                         "--loglevel", "INFO"])
        start(procs, "beat", celery + ["beat", "--loglevel", "INFO", "-s",
                                       str(var / "celerybeat-schedule")])
        start(procs, "caddy", ["caddy", "run", "--config", "deploy/caddy/Caddyfile.local",
                               "--adapter", "caddyfile"])
        base = f"http://medforge.localhost:{EDGE_PORT}"
        print(
            "\n"
            "MedForge is running (Ctrl-C stops everything):\n"
            f"  web UI (external)   {base}/\n"
            f"  web UI (internal)   http://internal.medforge.localhost:{EDGE_PORT}/\n"
            f"  API + docs          http://api.medforge.localhost:{EDGE_PORT}/api/v2/docs/\n"
            f"  django-admin        {base}/admin/\n"
            f"  health / metrics    {base}/healthz  {base}/metrics\n"
            f"  sessions (IDE)      http://s-<slug>.external.medforge.localhost:{EDGE_PORT}/\n"
            f"  sign in as          admin@medforge.localhost / {DEMO_PASSWORD}  (admin)\n"
            f"                      demo@medforge.localhost / {DEMO_PASSWORD}\n",
            flush=True,
        )
        stopping = {"now": False}

        def on_signal(signum, frame):
            stopping["now"] = True

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        while not stopping["now"]:
            for name, p in procs:
                if p.poll() is not None:
                    print(f"!! {name} exited with {p.returncode}; stopping the rest", flush=True)
                    stopping["now"] = True
                    break
            time.sleep(0.5)
    finally:
        print("==> stopping", flush=True)
        stop_all(procs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
