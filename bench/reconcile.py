"""Reconcile cost (SPEC §9): Docker API calls and wall time of one pass at 10 and at 500 active
sessions. Target: the number of Docker calls does not grow with the sessions (one labelled
list), and a 500-session pass takes under 5 % of SESSION_POLL_INTERVAL_SECONDS.

    .venv/bin/python bench/reconcile.py

10 sessions are real running sessions (local pack, started through the lifecycle). The 500
are those 10 plus 490 `starting` sessions, each with a real container that Docker has
created but not started (a started one per session would need 490 IDE processes on this
host); reconcile must still list, match and leave every one of them alone. The database
queries per pass are reported too. Own database, own networks; everything is removed at the
end.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
EXT, INT = "medforge-bench-rec-ext", "medforge-bench-rec-int"
WORKSPACES = tempfile.mkdtemp(prefix="medforge-bench-rec-")
os.environ.update({"SESSION_EXTERNAL_NETWORK": EXT, "SESSION_INTERNAL_NETWORK": INT,
                   "WORKSPACE_ROOT": WORKSPACES, "GPU_STATIC_COUNT": "500",
                   "SESSION_MEMORY_LIMIT": "128m"})

from _django import remove_bench_docker, setup, target_line


def main() -> int:
    image = subprocess.run(["bash", str(REPO / "deploy/packs/local/build.sh")],
                           capture_output=True, text=True, check=True).stdout.split()[-1]
    setup(db_name="medforge_bench_sessions")
    import docker
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from medforge.accounts.models import User
    from runtime.containers import LABEL_MANAGED, container_name
    from runtime.factory import get_container_runtime
    from sessions_app import dispatch, lifecycle, services
    from sessions_app.models import GPU, Session
    from sessions_app.reconcile import reconcile_pass

    dispatch.set_sender(lambda *a: None)
    services.gpus_sync()
    pack = services.pack_register_local(image_id=image)
    runtime = get_container_runtime()
    runtime.ensure_networks()
    api = docker.APIClient(timeout=120, **docker.utils.kwargs_from_env())
    poll = settings.SESSION_POLL_INTERVAL_SECONDS
    results = {}
    try:
        users = User.objects.bulk_create(
            [User(email=f"rec{i}@example.org", handle=f"rec-{i}") for i in range(500)])
        users = list(User.objects.filter(email__startswith="rec").order_by("id"))
        for user in users[:10]:
            session = services.session_create(user=user, exposure="external")
            assert lifecycle.session_start_run(session_id=str(session.id)) == "running"

        def measure(label: str, expect: int) -> None:
            reconcile_pass()  # warm: connections, first list
            passes = []
            for _ in range(5):
                with CaptureQueriesContext(connection) as queries:
                    report = reconcile_pass()
                assert report.sessions == expect and not report.actions and not report.orphans, \
                    report.as_dict()
                passes.append((report.docker_calls, report.seconds, len(queries)))
            calls = max(p[0] for p in passes)
            seconds = sorted(p[1] for p in passes)[len(passes) // 2]
            results[label] = (calls, seconds, max(p[2] for p in passes))
            print(f"{label}: sessions={report.sessions} containers={report.containers} "
                  f"docker_calls={calls} db_queries={results[label][2]} "
                  f"pass_ms={seconds * 1000:.1f} (median of 5)")

        measure("10", 10)

        t0 = time.perf_counter()
        gpus = list(GPU.objects.order_by("index")[10:500])
        for user, gpu in zip(users[10:], gpus, strict=False):
            session = Session.objects.create(owner=user, exposure="external", pack=pack,
                                             gpu=gpu, active_gpu=gpu)
            created = api.create_container(
                image=image, name=container_name(session.slug), detach=True,
                labels={LABEL_MANAGED: "true", "medforge.session_id": str(session.id),
                        "medforge.slug": session.slug, "medforge.user_id": str(user.pk),
                        "medforge.exposure": "external"},
                host_config=api.create_host_config(network_mode=EXT))
            Session.objects.filter(pk=session.pk).update(container_id=created["Id"])
        print(f"created 490 more sessions with containers in {time.perf_counter() - t0:.0f}s")
        measure("500", 500)
    finally:
        remove_bench_docker(api, (EXT, INT), WORKSPACES)

    c10, _, q10 = results["10"]
    c500, s500, q500 = results["500"]
    fraction = s500 / poll
    print(target_line("reconcile_docker_calls_10_sessions", c10, "==1", c10 == 1, fmt="d"))
    print(target_line("reconcile_docker_calls_500_sessions", c500, "==1 (same as at 10)",
                      c500 == c10 == 1, fmt="d"))
    print(target_line("reconcile_db_queries_500_vs_10", q500 - q10, "==0", q500 == q10, fmt="d"))
    print(target_line("reconcile_pass_500_fraction_of_poll_interval", fraction,
                      f"<0.05 (poll {poll}s)", fraction < 0.05, fmt=".4f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
