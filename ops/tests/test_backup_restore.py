"""ops/backup-db.sh then ops/restore-db.sh into a scratch MariaDB database round-trips every
row of every table (counts and content checksums); a non-empty target is refused."""
from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from pathlib import Path

import MySQLdb
import pytest
from django.db import connection

from medforge.accounts.factories import UserFactory
from medforge.ops import flags, heartbeat
from sessions_app.models import Snapshot

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.mariadb, pytest.mark.slow]


def server() -> MySQLdb.Connection:
    s = connection.settings_dict
    conn = MySQLdb.connect(host=s["HOST"] or "127.0.0.1", port=int(s["PORT"] or 3306),
                           user=s["USER"], passwd=s["PASSWORD"] or "", charset="utf8mb4")
    # Autocommit: an open read transaction would hold metadata locks that block DROP DATABASE.
    conn.autocommit(True)
    return conn


def db_url(name: str) -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"mysql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 3306}/{name}"


def fingerprint(conn, schema: str) -> dict[str, tuple[int, str]]:
    """table → (row count, sha256 over every row in a canonical order)."""
    cur = conn.cursor()
    cur.execute("SELECT table_name FROM information_schema.tables "
                "WHERE table_schema=%s AND table_type='BASE TABLE'", (schema,))
    out = {}
    for (table,) in cur.fetchall():
        cur.execute(f"SELECT * FROM `{schema}`.`{table}`")
        rows = sorted(repr(r) for r in cur.fetchall())
        out[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    return out


def script(name: str, *args: str, url: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "ops" / name), *args], check=False, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "DATABASE_URL": url, "MEDFORGE_RUN": "local", **env})


def test_backup_then_restore_round_trips_every_row(transactional_db, tmp_path, gpus,
                                                    place_session):
    # Real rows in many tables, including JSON, unicode, binary-ish and NULL values.
    owner = UserFactory(handle="zoë", email="zoe@example.org", display_name="Zoë 🧪 O'Brien")
    session = place_session(owner, "stopped", gpus[0], error_message="line1\nline2\t\"quoted\"")
    Snapshot.objects.create(session=session, owner=owner, name="stop-1", full_name="1/x@stop-1",
                            kind="stop", size_bytes=None)
    heartbeat.beat(heartbeat.RECONCILE, passes=3, note="ünïcode")
    flags.set_flag(flags.MAINTENANCE, True, "drill")
    source = connection.settings_dict["NAME"]
    scratch = f"ops_restore_{uuid.uuid4().hex[:10]}"
    conn = server()
    try:
        backup = tmp_path / "b.sql.gz"
        done = script("backup-db.sh", str(backup), url=db_url(source))
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == str(backup)
        assert (tmp_path / "b.sql.gz.sha256").exists()

        done = script("restore-db.sh", str(backup), "--into", scratch, url=db_url(source))
        assert done.returncode == 0, done.stderr

        want, got = fingerprint(conn, source), fingerprint(conn, scratch)
        assert len(want) > 10 and want == got
        assert want["accounts_user"][0] >= 1 and want["sessions_app_snapshot"][0] == 1

        # Restoring over a database that has tables needs --force.
        again = script("restore-db.sh", str(backup), "--into", scratch, url=db_url(source))
        assert again.returncode != 0 and "--force" in again.stderr
        forced = script("restore-db.sh", str(backup), "--into", scratch, "--force",
                        url=db_url(source))
        assert forced.returncode == 0, forced.stderr
        assert fingerprint(conn, scratch) == want
    finally:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{scratch}`")
        conn.close()


def test_a_damaged_backup_is_refused(transactional_db, tmp_path):
    source = connection.settings_dict["NAME"]
    backup = tmp_path / "b.sql.gz"
    assert script("backup-db.sh", str(backup), url=db_url(source)).returncode == 0
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 0xFF
    backup.write_bytes(bytes(data))
    scratch = f"ops_restore_{uuid.uuid4().hex[:10]}"
    done = script("restore-db.sh", str(backup), "--into", scratch, url=db_url(source))
    assert done.returncode != 0 and "checksum mismatch" in done.stderr
    conn = server()
    try:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name=%s",
                    (scratch,))
        assert cur.fetchone()[0] == 0  # nothing was created
    finally:
        conn.close()


def test_backup_of_an_unreachable_server_fails(tmp_path):
    out = tmp_path / "x.sql.gz"
    done = script("backup-db.sh", str(out), url="mysql://root@127.0.0.1:1/medforge")
    assert done.returncode != 0
    assert not out.exists() and not Path(f"{out}.partial").exists()
