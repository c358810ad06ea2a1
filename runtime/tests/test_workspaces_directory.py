"""DirectoryWorkspaces on real directories: layout, ownership, snapshots as frozen copies."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from runtime.workspaces import (
    DirectoryWorkspaces,
    SnapshotNotFound,
    WorkspaceNotFound,
    WorkspaceStore,
)


@pytest.fixture
def store(tmp_path: Path) -> DirectoryWorkspaces:
    return DirectoryWorkspaces(tmp_path / "workspaces")


def _assert_ide_user_can_write(path: str) -> None:
    st = os.stat(path)
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (1000, 1000)
    else:
        # Without root the directory is opened up instead of chowned.
        assert stat.S_IMODE(st.st_mode) == 0o777


def test_is_a_workspace_store(store: DirectoryWorkspaces) -> None:
    assert isinstance(store, WorkspaceStore)


def test_create_layout_ownership_and_idempotence(store: DirectoryWorkspaces, tmp_path: Path) -> None:
    ws = store.create(7, "sess-1")
    assert ws.id == "7/sess-1"
    assert ws.host_path == str(tmp_path / "workspaces" / "7" / "sess-1")
    assert Path(ws.host_path).is_dir()
    _assert_ide_user_can_write(ws.host_path)

    Path(ws.host_path, "train.py").write_text("print('hi')")
    again = store.create("7", "sess-1")
    assert again == ws
    # Idempotent create never wipes what is there.
    assert Path(ws.host_path, "train.py").read_text() == "print('hi')"


def test_snapshot_is_a_frozen_copy(store: DirectoryWorkspaces, tmp_path: Path) -> None:
    ws = store.create(7, "s1")
    root = Path(ws.host_path)
    (root / "data").mkdir()
    (root / "data" / "a.csv").write_text("x,y\n1,2\n")
    (root / "link").symlink_to("data/a.csv")
    (root / "dangling").symlink_to("/nowhere/at/all")

    snap = store.snapshot(ws.id, "stop-1700000000000")
    assert snap.full_name == "7/s1@stop-1700000000000"
    assert snap.name == "stop-1700000000000"
    assert snap.size_bytes >= len("x,y\n1,2\n")
    copy = tmp_path / "workspaces" / ".snapshots" / "7" / "s1@stop-1700000000000"
    assert (copy / "data" / "a.csv").read_text() == "x,y\n1,2\n"
    # Symlinks are kept as links, not followed (a link to / must not copy the host).
    assert os.readlink(copy / "link") == "data/a.csv"
    assert os.readlink(copy / "dangling") == "/nowhere/at/all"

    # Later writes to the workspace do not reach the snapshot.
    (root / "data" / "a.csv").write_text("changed")
    (root / "new.txt").write_text("new")
    assert (copy / "data" / "a.csv").read_text() == "x,y\n1,2\n"
    assert not (copy / "new.txt").exists()

    # Same name again is the same snapshot, not a second copy of the changed files.
    assert store.snapshot(ws.id, "stop-1700000000000") == snap
    assert (copy / "data" / "a.csv").read_text() == "x,y\n1,2\n"
    # No temporary directories are left behind.
    assert [p.name for p in copy.parent.iterdir()] == ["s1@stop-1700000000000"]


def test_list_and_destroy(store: DirectoryWorkspaces) -> None:
    ws = store.create(7, "s1")
    other = store.create(7, "s10")  # a session id that shares a prefix must not leak in
    first = store.snapshot(ws.id, "stop-1")
    second = store.snapshot(ws.id, "death-2")
    store.snapshot(other.id, "stop-3")

    listed = store.list_snapshots(ws.id)
    assert [s.name for s in listed] == ["stop-1", "death-2"]
    assert listed[0].created_at <= listed[1].created_at
    assert all(s.workspace_id == ws.id for s in listed)

    assert store.destroy_snapshot(first.full_name) is True
    assert store.destroy_snapshot(first.full_name) is False
    assert [s.name for s in store.list_snapshots(ws.id)] == ["death-2"]
    assert second in store.list_snapshots(ws.id)
    assert store.list_snapshots("9/none") == []


def test_restore_into_a_new_session(store: DirectoryWorkspaces) -> None:
    ws = store.create(7, "old")
    Path(ws.host_path, "model.pt").write_bytes(b"\x00weights")
    snap = store.snapshot(ws.id, "stop-1")
    Path(ws.host_path, "model.pt").write_bytes(b"overwritten")

    restored = store.restore(snap.full_name, 8, "new")
    assert restored.id == "8/new"
    assert Path(restored.host_path, "model.pt").read_bytes() == b"\x00weights"
    _assert_ide_user_can_write(restored.host_path)

    # The restored workspace is independent of the snapshot.
    Path(restored.host_path, "model.pt").write_bytes(b"edited")
    assert store.restore(snap.full_name, 9, "other").host_path != restored.host_path
    again = store.restore(snap.full_name, 8, "new")
    assert again == restored
    assert Path(again.host_path, "model.pt").read_bytes() == b"edited"

    with pytest.raises(SnapshotNotFound):
        store.restore("7/old@nope", 8, "x")


def test_snapshot_of_missing_workspace(store: DirectoryWorkspaces) -> None:
    with pytest.raises(WorkspaceNotFound):
        store.snapshot("7/missing", "stop-1")


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.create("..", "x"),
        lambda s: s.create(7, "../../etc"),
        lambda s: s.create(7, "a/b"),
        lambda s: s.snapshot("7/s1", "../x"),
        lambda s: s.snapshot("7/../s1", "x"),
        lambda s: s.destroy_snapshot("7/s1"),
        lambda s: s.destroy_snapshot("../../7/s1@x"),
        lambda s: s.restore("7/s1@x", 8, ".."),
    ],
)
def test_paths_cannot_escape_the_root(store: DirectoryWorkspaces, call) -> None:
    with pytest.raises(ValueError):
        call(store)


def test_usage_and_ping(store: DirectoryWorkspaces, tmp_path: Path) -> None:
    usage = store.usage()
    assert usage["backend"] == "directory"
    assert usage["total_bytes"] > 0 and usage["available_bytes"] >= 0
    assert usage["healthy"] is True
    assert store.ping() is True

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert DirectoryWorkspaces(blocker / "ws").ping() is False
