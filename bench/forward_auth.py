"""Forward auth on the hot path (SPEC §9), measured with wrk on loopback in one run:

  1. warm `GET /api/v2/auth/session-proxy` vs a Django no-op view on the same gunicorn
     (cost ratio = no-op throughput / warm throughput; target <= 1.3)
  2. warm check vs the naive path that loads the Django session and the user from the
     database on every request (throughput ratio; target >= 3)
  3. Caddy + forward_auth in front of a real session IDE vs the same Caddy proxying the same
     IDE without auth (throughput ratio; target >= 1/3)

    .venv/bin/python bench/forward_auth.py [--rounds 5] [--duration 3] [--connections 8]

Everything runs on this machine: gunicorn (gthread, same workers for every variant) on the
bench database (bench/_django.py) with persistent database connections as in production,
Redis for the cache, Debian's caddy with the shipped Caddyfile.local, and a container from the
local pack (deploy/packs/local). Variants are interleaved round by round and each result is the
median of the rounds, so drift on a shared machine hits every variant alike.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

from _django import setup, target_line  # noqa: E402

# The bench keeps its cache apart from the test suite's (which flushes its Redis db).
os.environ.setdefault("CACHE_URL", "rediscache://127.0.0.1:6379/3")
os.environ.setdefault("DB_CONN_MAX_AGE", "60")


def run(cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout,
                          **kw)


def wrk(url: str, headers: dict[str, str], *, duration: float, connections: int,
        threads: int) -> float:
    """Requests per second; refuses a run in which any answer was not 2xx."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--timeout", "5s"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    done = run(cmd + [url], timeout=duration + 60)
    out = done.stdout
    if done.returncode != 0 or "Requests/sec" not in out:
        raise SystemExit(f"wrk failed on {url}:\n{out}\n{done.stderr}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or (errors and re.search(r"(read|write|timeout) [1-9]", errors.group(1))):
        raise SystemExit(f"wrk saw failures on {url} {headers}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))


def start_ide() -> tuple[object, str, str]:
    from runtime.containers import DockerRuntime, SessionContainerSpec

    built = run(["bash", str(ROOT / "deploy" / "packs" / "local" / "build.sh")], timeout=1800)
    lines = built.stdout.split()
    if built.returncode != 0 or not lines or not lines[-1].startswith("sha256:"):
        raise SystemExit(f"deploy/packs/local/build.sh failed:\n{built.stderr[-3000:]}")
    tag = uuid.uuid4().hex[:8]
    runtime = DockerRuntime(gpu_mode="none", publish_mode="loopback", cpu_limit=1.0,
                            memory_limit="256m", pids_limit=256, shm_size="32m",
                            external_network=f"mf-bench-ext-{tag}",
                            internal_network=f"mf-bench-int-{tag}")
    spec = SessionContainerSpec(session_id=f"bench-forward-auth-{tag}", slug=f"bench{tag}",
                                user_id="0", exposure="external", image=lines[-1])
    info = runtime.run(spec)
    info = runtime.wait_ready(info.id, info.upstream, timeout_s=60)
    return runtime, spec.container_name, info.upstream


def stop_ide(runtime, name: str) -> None:
    runtime.remove_by_name(name)
    runtime.close()
    run(["docker", "network", "rm", runtime.external_network, runtime.internal_network], 60)


def start_gunicorn(port: int, workers: int, threads: int) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "forward_auth_site",
           "PYTHONPATH": os.pathsep.join([str(BENCH), str(ROOT)])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "medforge.wsgi:application",
         "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", "gthread",
         "--threads", str(threads), "--keep-alive", "30", "--log-level", "warning"],
        cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{proc.stderr.read().decode()[-3000:]}")
        try:
            requests.get(f"http://127.0.0.1:{port}/bench/noop", timeout=1)
            return proc
        except requests.RequestException:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("gunicorn did not answer within 60 s")


def check(url: str, headers: dict[str, str], upstream: str | None) -> None:
    import requests

    resp = requests.get(url, headers=headers, timeout=10)
    if resp.status_code != 200 or (upstream and resp.headers.get("X-Upstream") != upstream):
        raise SystemExit(f"{url} answered {resp.status_code} {dict(resp.headers)} "
                         f"{resp.text[:300]}: the variant would measure a refusal")


def noauth_caddyfile(port: int, upstream: str) -> str:
    """The same Caddy reverse-proxying the same IDE, minus forward_auth (and its 403/502
    guards), keeping the header work of the shipped session route."""
    return f"""{{
	admin off
	auto_https off
	default_bind 127.0.0.1
}}
http://:{port} {{
	route {{
		request_header -X-Upstream
		request_header -X-Medforge-Upstream
		reverse_proxy {upstream} {{
			header_up -Authorization
			header_up Cookie "(?:^|;)\\s*mf_(?:session|csrftoken)=[^;]*()" "$1"
			header_up Cookie "^[;\\s]+()" "$1"
		}}
	}}
}}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    args = parser.parse_args()

    setup(db_name="medforge_bench_forward_auth")
    from django.conf import settings
    from django.test import Client

    from medforge.accounts.models import User
    from routing.edge import CaddyEdge, free_port
    from sessions_app.models import GPU, Pack, Session

    runtime, container, ide = start_ide()
    gunicorn = edge = plain = None
    try:
        owner = User.objects.create_user(email="bench-owner@example.org",
                                         password="bench-passphrase-42", handle="bench-owner")
        gpu = GPU.objects.create(index=0, uuid="GPU-bench-0000", name="Bench GPU")
        pack = Pack.objects.create(slug="bench", name="Bench", image="sha256:" + "0" * 64)
        session = Session.objects.create(owner=owner, exposure="external", pack=pack, gpu=gpu,
                                         active_gpu=gpu, status="running", upstream=ide)
        client = Client()
        client.force_login(owner)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        session_host = f"s-{session.slug}.external.{settings.BASE_DOMAIN}"
        jar = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}"}

        app_port = free_port()
        gunicorn = start_gunicorn(app_port, args.workers, args.threads)
        app = f"http://127.0.0.1:{app_port}"
        edge = CaddyEdge(app_upstream=f"127.0.0.1:{app_port}").start()
        plain_file = Path(tempfile.mkdtemp(prefix="medforge-bench-")) / "Caddyfile"
        plain_port = free_port()
        plain_file.write_text(noauth_caddyfile(plain_port, ide))
        plain = CaddyEdge(app_upstream="-", edge_port=plain_port, caddyfile=plain_file).start()

        variants = {
            "warm": (f"{app}/api/v2/auth/session-proxy", {"Host": session_host, **jar}, ide),
            "noop": (f"{app}/bench/noop", {"Host": settings.BASE_DOMAIN, **jar}, None),
            "naive": (f"{app}/bench/naive", {"Host": session_host, **jar}, ide),
            "caddy_auth": (f"http://127.0.0.1:{edge.edge_port}/healthz",
                           {"Host": f"{session_host}:{edge.edge_port}", **jar}, None),
            "caddy_plain": (f"http://127.0.0.1:{plain_port}/healthz",
                            {"Host": f"{session_host}:{plain_port}", **jar}, None),
        }
        for url, headers, upstream in variants.values():
            check(url, headers, upstream)

        print(f"forward_auth bench: gunicorn gthread {args.workers}x{args.threads}, wrk "
              f"-t{args.wrk_threads} -c{args.connections}, {args.rounds} rounds x "
              f"{args.duration:g}s, IDE {ide}, {os.cpu_count()} CPUs")
        results: dict[str, list[float]] = {name: [] for name in variants}
        for url, headers, _ in variants.values():  # warm-up: caches, pools, JIT-less
            wrk(url, headers, duration=1, connections=args.connections,
                threads=args.wrk_threads)
        for rnd in range(args.rounds):
            for name, (url, headers, _) in variants.items():
                results[name].append(wrk(url, headers, duration=args.duration,
                                         connections=args.connections,
                                         threads=args.wrk_threads))
            print(f"  round {rnd + 1}: " + "  ".join(f"{n}={results[n][-1]:.0f}/s"
                                                    for n in variants), flush=True)
        med = {name: statistics.median(values) for name, values in results.items()}
        print("medians (requests/s): " + "  ".join(f"{n}={v:.0f}" for n, v in med.items()))

        cost = med["noop"] / med["warm"]
        speedup = med["warm"] / med["naive"]
        kept = med["caddy_auth"] / med["caddy_plain"]
        print(target_line("forward_auth_warm_cost_vs_django_noop", cost, "<=1.3", cost <= 1.3))
        print(target_line("forward_auth_warm_throughput_vs_naive_db", speedup, ">=3",
                          speedup >= 3))
        print(target_line("forward_auth_caddy_throughput_kept_vs_no_auth", kept, ">=0.333",
                          kept >= 1 / 3))
        return 0
    finally:
        for edge_proc in (edge, plain):
            if edge_proc is not None:
                edge_proc.stop()
        if gunicorn is not None:
            gunicorn.terminate()
            try:
                gunicorn.wait(timeout=15)
            except subprocess.TimeoutExpired:
                gunicorn.kill()
        stop_ide(runtime, container)


if __name__ == "__main__":
    sys.exit(main())
