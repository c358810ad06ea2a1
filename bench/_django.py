"""Sets up Django for a benchmark against its own MariaDB database (created and migrated here).

Usage at the top of a bench script:  from _django import setup; setup()
The database is `medforge_bench` on the test MariaDB (127.0.0.1:3306, root) unless
BENCH_DATABASE_URL says otherwise; it is dropped and re-created when `fresh=True`.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup(*, fresh: bool = True, db_name: str = "medforge_bench") -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("MEDFORGE_ENV", "test")
    os.environ.setdefault("MEDFORGE_VAR_DIR", str(ROOT / "var" / "bench"))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    url = os.environ.get("BENCH_DATABASE_URL", f"mysql://root@127.0.0.1:3306/{db_name}")
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medforge.settings")
    if fresh and url.startswith("mysql"):
        import MySQLdb

        conn = MySQLdb.connect(host="127.0.0.1", user="root", port=3306)
        cur = conn.cursor()
        cur.execute(f"DROP DATABASE IF EXISTS `{db_name}`")
        cur.execute(f"CREATE DATABASE `{db_name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        conn.close()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def target_line(name: str, measured: float, goal: str, ok: bool, fmt: str = ".3f") -> str:
    return f"TARGET {name} measured={measured:{fmt}} goal={goal} {'PASS' if ok else 'FAIL'}"


def remove_bench_docker(api, networks: tuple[str, ...], workspaces: str) -> None:
    """Remove every container on the bench's own networks, the networks, and its workspaces."""
    import shutil

    import docker

    for row in api.containers(all=True, filters={"network": list(networks)}):
        api.remove_container(row["Id"], force=True)
    for name in networks:
        try:
            api.remove_network(name)
        except docker.errors.APIError:
            pass
    api.close()
    shutil.rmtree(workspaces, ignore_errors=True)
