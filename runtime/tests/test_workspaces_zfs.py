"""ZfsWorkspaces against a stand-in `zfs`/`zpool` (runtime/tests/fake_zfs.py).

ZFS cannot run on this machine (no kernel module, no pool, no root-level block devices in the
sandbox), so these tests put a small Python script named `zfs` and `zpool` on PATH that logs
every argv and answers like zfs would, and assert the exact commands ZfsWorkspaces runs.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.workspaces import (
    SnapshotNotFound,
    WorkspaceError,
    WorkspaceNotFound,
    ZfsCommandError,
    ZfsWorkspaces,
)

ROOT = "tank/medforge/workspaces"
FAKE = Path(__file__).with_name("fake_zfs.py")


class FakeZfs:
    def __init__(self, tmp_path: Path) -> None:
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        self.log = tmp_path / "zfs.log"
        self.state = tmp_path / "zfs-state.json"
        self.mounts = tmp_path / "mnt"
        source = FAKE.read_text()
        for program in ("zfs", "zpool"):
            script = self.bin / program
            # The interpreter running the tests, not whatever python3 is first on PATH.
            script.write_text(f"#!{sys.executable}\n{source}")
            script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def clear(self) -> None:
        self.log.unlink(missing_ok=True)

    def seed_root(self) -> None:
        """Create the root dataset the way an operator's bootstrap would (env set by the fixture)."""
        subprocess.run([str(self.bin / "zfs"), "create", "-p", ROOT], check=True)
        self.clear()


@pytest.fixture
def fake_zfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeZfs:
    fake = FakeZfs(tmp_path)
    monkeypatch.setenv("PATH", f"{fake.bin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ZFS_LOG", str(fake.log))
    monkeypatch.setenv("FAKE_ZFS_STATE", str(fake.state))
    monkeypatch.setenv("FAKE_ZFS_MOUNT_BASE", str(fake.mounts))
    fake.seed_root()
    return fake


def test_create_runs_list_create_get_and_chowns(fake_zfs: FakeZfs) -> None:
    store = ZfsWorkspaces(ROOT, quota="50G")
    ws = store.create(7, "sess-1")
    dataset = f"{ROOT}/7/sess-1"
    assert ws.id == dataset
    assert ws.host_path == str(fake_zfs.mounts / dataset)
    assert fake_zfs.calls() == [
        ["zfs", "list", "-H", "-o", "name", dataset],
        ["zfs", "create", "-p", "-o", "quota=50G", dataset],
        ["zfs", "get", "-H", "-o", "value", "mountpoint", dataset],
    ]
    mode = os.stat(ws.host_path)
    if os.geteuid() == 0:
        assert (mode.st_uid, mode.st_gid) == (1000, 1000)
    else:
        assert stat.S_IMODE(mode.st_mode) == 0o777


def test_create_is_idempotent(fake_zfs: FakeZfs) -> None:
    store = ZfsWorkspaces(ROOT)
    first = store.create("7", "sess-1")
    fake_zfs.clear()
    assert store.create("7", "sess-1") == first
    dataset = f"{ROOT}/7/sess-1"
    # The second call only looks: no `zfs create`.
    assert fake_zfs.calls() == [
        ["zfs", "list", "-H", "-o", "name", dataset],
        ["zfs", "get", "-H", "-o", "value", "mountpoint", dataset],
    ]


def test_create_with_mountpoint_base(fake_zfs: FakeZfs, tmp_path: Path) -> None:
    store = ZfsWorkspaces(ROOT, mountpoint_base=str(tmp_path / "ws"))
    ws = store.create(3, "abc")
    assert ws.host_path == str(tmp_path / "ws" / "3" / "abc")
    expected = ["zfs", "create", "-p", "-o", f"mountpoint={tmp_path / 'ws'}/3/abc", f"{ROOT}/3/abc"]
    assert expected in fake_zfs.calls()


def test_snapshot_list_destroy(fake_zfs: FakeZfs) -> None:
    store = ZfsWorkspaces(ROOT)
    ws = store.create(7, "s1")
    fake_zfs.clear()

    snap = store.snapshot(ws.id, "stop-1700000000000")
    assert snap.full_name == f"{ws.id}@stop-1700000000000"
    assert snap.name == "stop-1700000000000"
    assert snap.size_bytes == 0
    assert snap.created_at.tzinfo is not None
    assert fake_zfs.calls() == [
        ["zfs", "snapshot", f"{ws.id}@stop-1700000000000"],
        ["zfs", "list", "-H", "-p", "-t", "snapshot", "-o", "name,creation,used",
         f"{ws.id}@stop-1700000000000"],
    ]

    # Same name again: no error, same snapshot (a retried stop task).
    assert store.snapshot(ws.id, "stop-1700000000000") == snap
    store.snapshot(ws.id, "death-1700000000001")

    fake_zfs.clear()
    listed = store.list_snapshots(ws.id)
    assert [s.name for s in listed] == ["stop-1700000000000", "death-1700000000001"]
    assert fake_zfs.calls() == [
        ["zfs", "list", "-H", "-p", "-t", "snapshot", "-o", "name,creation,used",
         "-s", "creation", "-r", ws.id],
    ]

    fake_zfs.clear()
    assert store.destroy_snapshot(snap.full_name) is True
    assert store.destroy_snapshot(snap.full_name) is False
    assert fake_zfs.calls() == [["zfs", "destroy", snap.full_name]] * 2
    assert [s.name for s in store.list_snapshots(ws.id)] == ["death-1700000000001"]


def test_list_snapshots_of_missing_workspace_is_empty(fake_zfs: FakeZfs) -> None:
    assert ZfsWorkspaces(ROOT).list_snapshots(f"{ROOT}/9/nope") == []


def test_snapshot_of_missing_workspace(fake_zfs: FakeZfs) -> None:
    with pytest.raises(WorkspaceNotFound, match="does not exist"):
        ZfsWorkspaces(ROOT).snapshot(f"{ROOT}/9/nope", "stop-1")


def test_restore_clones_into_new_session(fake_zfs: FakeZfs) -> None:
    store = ZfsWorkspaces(ROOT, quota="10G")
    ws = store.create(7, "old")
    Path(ws.host_path, "notes.txt").write_text("keep me")
    snap = store.snapshot(ws.id, "stop-1")
    fake_zfs.clear()

    restored = store.restore(snap.full_name, 8, "new")
    target = f"{ROOT}/8/new"
    assert restored.id == target
    assert Path(restored.host_path, "notes.txt").read_text() == "keep me"
    assert fake_zfs.calls() == [
        ["zfs", "list", "-H", "-o", "name", target],
        ["zfs", "clone", "-p", "-o", "quota=10G", snap.full_name, target],
        ["zfs", "get", "-H", "-o", "value", "mountpoint", target],
    ]

    # Retried restore: the clone exists with the right origin, so it is reused.
    fake_zfs.clear()
    assert store.restore(snap.full_name, 8, "new") == restored
    assert ["zfs", "get", "-H", "-o", "value", "origin", target] in fake_zfs.calls()

    # A snapshot with a clone cannot be destroyed; zfs's reason reaches the caller.
    with pytest.raises(ZfsCommandError, match="dependent clones"):
        store.destroy_snapshot(snap.full_name)


def test_restore_refuses_unrelated_existing_dataset(fake_zfs: FakeZfs) -> None:
    store = ZfsWorkspaces(ROOT)
    ws = store.create(7, "old")
    snap = store.snapshot(ws.id, "stop-1")
    store.create(8, "taken")
    with pytest.raises(WorkspaceError, match="already exists"):
        store.restore(snap.full_name, 8, "taken")


def test_restore_missing_snapshot(fake_zfs: FakeZfs) -> None:
    with pytest.raises(SnapshotNotFound):
        ZfsWorkspaces(ROOT).restore(f"{ROOT}/7/old@nope", 8, "new")


def test_usage_and_ping(fake_zfs: FakeZfs) -> None:
    store = ZfsWorkspaces(ROOT)
    usage = store.usage()
    assert fake_zfs.calls() == [
        ["zfs", "get", "-H", "-p", "-o", "value", "used,available", ROOT],
        ["zpool", "list", "-H", "-p", "-o", "name,size,allocated,free,health", "tank"],
    ]
    assert usage["backend"] == "zfs"
    assert usage["used_bytes"] == 98304
    assert usage["available_bytes"] == 500_000_000_000
    assert usage["pool_used_pct"] == 25.0
    assert usage["health"] == "ONLINE" and usage["healthy"] is True
    assert store.ping() is True
    assert ZfsWorkspaces("othertank/ws").ping() is False


def test_unsafe_names_never_reach_zfs(fake_zfs: FakeZfs) -> None:
    store = ZfsWorkspaces(ROOT)
    ws = store.create(7, "s1")
    fake_zfs.clear()
    for bad in (lambda: store.create("../etc", "x"), lambda: store.create(7, "a/b"),
                lambda: store.create(7, "-o"), lambda: store.snapshot(ws.id, "a@b"),
                lambda: store.snapshot(ws.id, "x%y"), lambda: store.snapshot("other/7/s1", "x"),
                # Without "@" a destroy would remove the whole workspace dataset.
                lambda: store.destroy_snapshot(ws.id),
                lambda: store.destroy_snapshot(f"{ROOT}/7@x")):
        with pytest.raises(ValueError):
            bad()
    assert fake_zfs.calls() == []


def test_zfs_errors_carry_stderr(fake_zfs: FakeZfs, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ZfsWorkspaces(ROOT)
    monkeypatch.setenv("FAKE_ZFS_STATE", str(fake_zfs.state) + ".missing")
    with pytest.raises(ZfsCommandError) as caught:
        store.usage()
    assert "dataset does not exist" in str(caught.value)
    assert caught.value.argv[:2] == ["zfs", "get"]


def test_missing_zfs_binary_is_a_clear_error(tmp_path: Path) -> None:
    store = ZfsWorkspaces(ROOT, zfs_bin=str(tmp_path / "no-zfs"))
    with pytest.raises(WorkspaceError, match="is ZFS installed"):
        store.create(1, "s")
    assert store.ping() is False
