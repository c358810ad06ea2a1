"""Session workspaces and their snapshots: ZFS datasets on GPU hosts, plain directories in
development and tests.

A workspace is the directory mounted at /workspace in a session container, owned by the IDE's
uid/gid (1000). A snapshot freezes it when the session stops (`<workspace>@stop-<unix ms>`);
restore turns a snapshot into a new session's workspace. Both backends name things the same
way: workspace id `<root>/<user_id>/<session_id>` for ZFS (the dataset) or `<user_id>/<session_id>`
for directories, snapshot full name `<workspace id>@<name>`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

WORKSPACE_UID = 1000
WORKSPACE_GID = 1000

# Ids become path components and ZFS dataset names: no separators, no "..", no ZFS specials
# ("@", "%", "#") and no leading "-" (it would read as an option to the zfs CLI).
_COMPONENT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$")
_SNAPSHOT_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,199}$")


class WorkspaceError(Exception):
    """Base class of workspace and snapshot failures."""


class WorkspaceNotFound(WorkspaceError):
    """The workspace does not exist."""


class SnapshotNotFound(WorkspaceError):
    """The snapshot does not exist."""


class ZfsCommandError(WorkspaceError):
    """A zfs/zpool command failed; carries its argv, exit status and stderr."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(
            f"`{' '.join(self.argv)}` failed with exit status {returncode}: "
            f"{self.stderr or '(no error output)'}"
        )


@dataclass(frozen=True)
class Workspace:
    id: str
    host_path: str


@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    full_name: str
    created_at: datetime
    size_bytes: int

    @property
    def workspace_id(self) -> str:
        return self.full_name.rpartition("@")[0]


@runtime_checkable
class WorkspaceStore(Protocol):
    """What sessions need from workspace storage."""

    def create(self, user_id: str | int, session_id: str) -> Workspace: ...

    def snapshot(self, workspace_id: str, name: str) -> SnapshotInfo: ...

    def list_snapshots(self, workspace_id: str) -> list[SnapshotInfo]: ...

    def destroy_snapshot(self, full_name: str) -> bool: ...

    def restore(
        self, snapshot_full_name: str, into_user_id: str | int, into_session_id: str
    ) -> Workspace: ...

    def usage(self) -> dict[str, Any]: ...

    def ping(self) -> bool: ...


def _component(value: str | int, what: str) -> str:
    text = str(value)
    if not _COMPONENT_RE.match(text) or text in (".", ".."):
        raise ValueError(f"{what} {text!r} is not a safe identifier")
    return text


def _snapshot_name(name: str) -> str:
    if not _SNAPSHOT_NAME_RE.match(name):
        raise ValueError(f"snapshot name {name!r} is not a safe identifier")
    return name


def _split_full_name(full_name: str) -> tuple[str, str]:
    workspace_id, sep, name = full_name.rpartition("@")
    if not sep or not workspace_id:
        raise ValueError(f"{full_name!r} is not a snapshot name of the form <workspace>@<name>")
    return workspace_id, _snapshot_name(name)


def _give_to_ide_user(path: Path, uid: int, gid: int) -> None:
    """Make `path` writable by the IDE's uid inside the container.

    chown needs root (or CAP_CHOWN); a developer running the stack as themselves cannot, so
    then the directory is opened to everyone instead. The tree above it is not.
    """
    try:
        os.chown(path, uid, gid)
        os.chmod(path, 0o755)
    except PermissionError:
        os.chmod(path, 0o777)


# --------------------------------------------------------------------------- directories


class DirectoryWorkspaces:
    """Workspaces as directories `<root>/<user_id>/<session_id>`, snapshots as full copies
    under `<root>/.snapshots/<user_id>/<session_id>@<name>`.

    For development and tests: a snapshot costs a full copy. Copies are written to a
    temporary directory and renamed into place, so a crash never leaves a half snapshot.
    """

    backend = "directory"

    def __init__(
        self, root: str | os.PathLike[str], *, uid: int = WORKSPACE_UID, gid: int = WORKSPACE_GID
    ) -> None:
        self.root = Path(root)
        self.uid = uid
        self.gid = gid

    @property
    def snapshot_root(self) -> Path:
        return self.root / ".snapshots"

    def _parse_id(self, workspace_id: str) -> tuple[str, str]:
        parts = workspace_id.split("/")
        if len(parts) != 2:
            raise ValueError(f"{workspace_id!r} is not a workspace id of the form <user>/<session>")
        return _component(parts[0], "user id"), _component(parts[1], "session id")

    def _path(self, user_id: str, session_id: str) -> Path:
        return self.root / user_id / session_id

    def _snapshot_path(self, user_id: str, session_id: str, name: str) -> Path:
        return self.snapshot_root / user_id / f"{session_id}@{name}"

    def create(self, user_id: str | int, session_id: str) -> Workspace:
        user, session = _component(user_id, "user id"), _component(session_id, "session id")
        path = self._path(user, session)
        path.mkdir(parents=True, exist_ok=True)
        _give_to_ide_user(path, self.uid, self.gid)
        return Workspace(id=f"{user}/{session}", host_path=str(path))

    def snapshot(self, workspace_id: str, name: str) -> SnapshotInfo:
        user, session = self._parse_id(workspace_id)
        name = _snapshot_name(name)
        source = self._path(user, session)
        target = self._snapshot_path(user, session, name)
        if not target.exists():
            if not source.is_dir():
                raise WorkspaceNotFound(f"workspace {workspace_id} does not exist at {source}")
            try:
                # The snapshot's own mtime is its creation time, not the workspace's.
                _copy_into_place(source, target, fresh_mtime=True)
            except OSError as exc:
                raise WorkspaceError(f"could not snapshot {workspace_id} as {name}: {exc}") from exc
        return self._info(user, session, name, target)

    def _info(self, user: str, session: str, name: str, path: Path) -> SnapshotInfo:
        return SnapshotInfo(
            name=name,
            full_name=f"{user}/{session}@{name}",
            created_at=datetime.fromtimestamp(path.stat().st_mtime, tz=UTC),
            size_bytes=_tree_size(path),
        )

    def list_snapshots(self, workspace_id: str) -> list[SnapshotInfo]:
        user, session = self._parse_id(workspace_id)
        folder = self.snapshot_root / user
        if not folder.is_dir():
            return []
        prefix = f"{session}@"
        found = [
            self._info(user, session, entry.name[len(prefix):], entry)
            for entry in folder.iterdir()
            if entry.name.startswith(prefix) and entry.is_dir()
        ]
        return sorted(found, key=lambda s: (s.created_at, s.name))

    def destroy_snapshot(self, full_name: str) -> bool:
        workspace_id, name = _split_full_name(full_name)
        user, session = self._parse_id(workspace_id)
        target = self._snapshot_path(user, session, name)
        if not target.is_dir():
            return False
        # Rename first so a crash half way leaves a hidden leftover, not a damaged snapshot.
        doomed = target.parent / f".del-{session}@{name}-{uuid.uuid4().hex}"
        try:
            os.rename(target, doomed)
        except FileNotFoundError:
            return False
        shutil.rmtree(doomed, ignore_errors=True)
        return True

    def restore(self, snapshot_full_name: str, into_user_id: str | int, into_session_id: str) -> Workspace:
        """A new workspace for `into_session_id` holding the snapshot's files.

        An existing target workspace is returned untouched, so a retried start is harmless.
        """
        workspace_id, name = _split_full_name(snapshot_full_name)
        user, session = self._parse_id(workspace_id)
        into_user = _component(into_user_id, "user id")
        into_session = _component(into_session_id, "session id")
        source = self._snapshot_path(user, session, name)
        if not source.is_dir():
            raise SnapshotNotFound(f"snapshot {snapshot_full_name} does not exist")
        target = self._path(into_user, into_session)
        if not target.exists():
            try:
                _copy_into_place(source, target)
            except OSError as exc:
                raise WorkspaceError(f"could not restore {snapshot_full_name}: {exc}") from exc
        _give_to_ide_user(target, self.uid, self.gid)
        return Workspace(id=f"{into_user}/{into_session}", host_path=str(target))

    def usage(self) -> dict[str, Any]:
        self.root.mkdir(parents=True, exist_ok=True)
        disk = shutil.disk_usage(self.root)
        return {
            "backend": self.backend,
            "root": str(self.root),
            "total_bytes": disk.total,
            "used_bytes": disk.used,
            "available_bytes": disk.free,
            "used_pct": round(100.0 * disk.used / disk.total, 1) if disk.total else None,
            "health": "ONLINE",
            "healthy": True,
        }

    def ping(self) -> bool:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        return os.access(self.root, os.W_OK | os.X_OK)


def _copy_into_place(source: Path, target: Path, *, fresh_mtime: bool = False) -> None:
    """Copy the tree `source` to `target` (symlinks kept as links) through a scratch folder
    renamed into place, so a crash never leaves a half copy. A concurrent copy that won the
    rename is kept. `fresh_mtime` stamps the copy's top folder with the current time."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex}"
    try:
        shutil.copytree(source, scratch, symlinks=True)
        if fresh_mtime:
            os.utime(scratch, None)
        try:
            os.rename(scratch, target)
        except OSError:
            if not target.exists():
                raise
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)


def _tree_size(path: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for entry in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, entry)).st_size
    return total


# --------------------------------------------------------------------------- ZFS


class ZfsWorkspaces:
    """Workspaces as ZFS datasets `<root_dataset>/<user_id>/<session_id>`, driven through the
    `zfs`/`zpool` CLIs (argument lists, never a shell).

    Snapshots are native ZFS snapshots (`<dataset>@<name>`), restore is `zfs clone`. Every
    failure raises ZfsCommandError carrying zfs's own stderr.
    """

    backend = "zfs"

    def __init__(
        self,
        root_dataset: str = "tank/medforge/workspaces",
        *,
        zfs_bin: str = "zfs",
        zpool_bin: str = "zpool",
        quota: str | None = None,
        mountpoint_base: str | None = None,
        uid: int = WORKSPACE_UID,
        gid: int = WORKSPACE_GID,
        timeout_s: float = 120.0,
    ) -> None:
        root_dataset = root_dataset.strip("/")
        if not root_dataset or any(not _COMPONENT_RE.match(p) for p in root_dataset.split("/")):
            raise ValueError(f"{root_dataset!r} is not a valid ZFS dataset name")
        self.root_dataset = root_dataset
        self.zfs_bin = zfs_bin
        self.zpool_bin = zpool_bin
        self.quota = quota or None
        self.mountpoint_base = mountpoint_base
        self.uid = uid
        self.gid = gid
        self.timeout_s = timeout_s

    @property
    def pool(self) -> str:
        return self.root_dataset.split("/", 1)[0]

    # -- running zfs --------------------------------------------------------------------

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        # LC_ALL=C keeps zfs's messages in English, which the "already exists" checks read.
        env = {**os.environ, "LC_ALL": "C"}
        try:
            return subprocess.run(
                argv, capture_output=True, text=True, timeout=self.timeout_s, check=False, env=env
            )
        except FileNotFoundError as exc:
            raise WorkspaceError(f"{argv[0]} not found: is ZFS installed on this host? ({exc})") from exc
        except subprocess.TimeoutExpired as exc:
            raise WorkspaceError(f"`{' '.join(argv)}` did not finish within {self.timeout_s:g}s") from exc

    def _zfs(self, *args: str) -> str:
        argv = [self.zfs_bin, *args]
        done = self._run(argv)
        if done.returncode != 0:
            raise ZfsCommandError(argv, done.returncode, done.stderr)
        return done.stdout

    def _exists(self, name: str) -> bool:
        argv = [self.zfs_bin, "list", "-H", "-o", "name", name]
        done = self._run(argv)
        if done.returncode == 0:
            return True
        if "does not exist" in done.stderr:
            return False
        raise ZfsCommandError(argv, done.returncode, done.stderr)

    # -- names --------------------------------------------------------------------------

    def _dataset(self, user_id: str | int, session_id: str) -> str:
        return f"{self.root_dataset}/{_component(user_id, 'user id')}/{_component(session_id, 'session id')}"

    def _check_workspace_id(self, workspace_id: str) -> str:
        prefix = self.root_dataset + "/"
        rest = workspace_id[len(prefix):] if workspace_id.startswith(prefix) else ""
        parts = rest.split("/")
        if len(parts) != 2:
            raise ValueError(f"{workspace_id!r} is not a workspace dataset under {self.root_dataset}")
        return self._dataset(parts[0], parts[1])

    def _create_options(self, user: str, session: str) -> list[str]:
        options: list[str] = []
        if self.quota:
            options += ["-o", f"quota={self.quota}"]
        if self.mountpoint_base:
            options += ["-o", f"mountpoint={self.mountpoint_base.rstrip('/')}/{user}/{session}"]
        return options

    def _mountpoint(self, dataset: str) -> str:
        mountpoint = self._zfs("get", "-H", "-o", "value", "mountpoint", dataset).strip()
        if not mountpoint.startswith("/"):
            # "none"/"legacy" would give the container nothing to mount.
            raise WorkspaceError(f"dataset {dataset} has no usable mountpoint ({mountpoint!r})")
        return mountpoint

    def _ready(self, dataset: str) -> Workspace:
        mountpoint = self._mountpoint(dataset)
        _give_to_ide_user(Path(mountpoint), self.uid, self.gid)
        return Workspace(id=dataset, host_path=mountpoint)

    # -- WorkspaceStore -----------------------------------------------------------------

    def create(self, user_id: str | int, session_id: str) -> Workspace:
        user, session = _component(user_id, "user id"), _component(session_id, "session id")
        dataset = self._dataset(user, session)
        if not self._exists(dataset):
            argv = [self.zfs_bin, "create", "-p", *self._create_options(user, session), dataset]
            done = self._run(argv)
            # Lost a race with another worker creating the same dataset: fine.
            if done.returncode != 0 and "already exists" not in done.stderr:
                raise ZfsCommandError(argv, done.returncode, done.stderr)
        return self._ready(dataset)

    def snapshot(self, workspace_id: str, name: str) -> SnapshotInfo:
        dataset = self._check_workspace_id(workspace_id)
        full_name = f"{dataset}@{_snapshot_name(name)}"
        argv = [self.zfs_bin, "snapshot", full_name]
        done = self._run(argv)
        if done.returncode != 0 and "dataset already exists" not in done.stderr:
            if "does not exist" in done.stderr:
                raise WorkspaceNotFound(f"workspace {workspace_id} does not exist: {done.stderr.strip()}")
            raise ZfsCommandError(argv, done.returncode, done.stderr)
        rows = self._parse_snapshot_rows(
            self._zfs("list", "-H", "-p", "-t", "snapshot", "-o", "name,creation,used", full_name)
        )
        if not rows:
            raise WorkspaceError(f"snapshot {full_name} was taken but zfs does not list it")
        return rows[0]

    def list_snapshots(self, workspace_id: str) -> list[SnapshotInfo]:
        dataset = self._check_workspace_id(workspace_id)
        argv = [
            self.zfs_bin, "list", "-H", "-p", "-t", "snapshot",
            "-o", "name,creation,used", "-s", "creation", "-r", dataset,
        ]
        done = self._run(argv)
        if done.returncode != 0:
            if "does not exist" in done.stderr:
                return []
            raise ZfsCommandError(argv, done.returncode, done.stderr)
        # -r also lists snapshots of child datasets; keep this workspace's own.
        return [s for s in self._parse_snapshot_rows(done.stdout) if s.workspace_id == dataset]

    def destroy_snapshot(self, full_name: str) -> bool:
        workspace_id, name = _split_full_name(full_name)
        dataset = self._check_workspace_id(workspace_id)
        # The "@" is checked above: `zfs destroy` of a bare dataset name would delete the
        # workspace itself.
        target = f"{dataset}@{name}"
        argv = [self.zfs_bin, "destroy", target]
        done = self._run(argv)
        if done.returncode == 0:
            return True
        if "could not find any snapshots to destroy" in done.stderr or "does not exist" in done.stderr:
            return False
        raise ZfsCommandError(argv, done.returncode, done.stderr)

    def restore(self, snapshot_full_name: str, into_user_id: str | int, into_session_id: str) -> Workspace:
        """`zfs clone` the snapshot into the new session's dataset.

        A target that already is a clone of this snapshot is returned (a retried start); any
        other existing dataset there is refused.
        """
        workspace_id, name = _split_full_name(snapshot_full_name)
        source = f"{self._check_workspace_id(workspace_id)}@{name}"
        user = _component(into_user_id, "user id")
        session = _component(into_session_id, "session id")
        target = self._dataset(user, session)
        if self._exists(target):
            origin = self._zfs("get", "-H", "-o", "value", "origin", target).strip()
            if origin != source:
                raise WorkspaceError(
                    f"cannot restore {source} into {target}: that dataset already exists "
                    f"(origin {origin!r})"
                )
            return self._ready(target)
        argv = [self.zfs_bin, "clone", "-p", *self._create_options(user, session), source, target]
        done = self._run(argv)
        if done.returncode != 0:
            if "does not exist" in done.stderr:
                raise SnapshotNotFound(f"snapshot {source} does not exist: {done.stderr.strip()}")
            raise ZfsCommandError(argv, done.returncode, done.stderr)
        return self._ready(target)

    def usage(self) -> dict[str, Any]:
        """The workspace root's used/available bytes (quota-aware) and its pool's health."""
        used, available = (
            int(v) for v in self._zfs(
                "get", "-H", "-p", "-o", "value", "used,available", self.root_dataset
            ).split()
        )
        argv = [self.zpool_bin, "list", "-H", "-p", "-o", "name,size,allocated,free,health", self.pool]
        done = self._run(argv)
        if done.returncode != 0:
            raise ZfsCommandError(argv, done.returncode, done.stderr)
        _, size, allocated, free, health = done.stdout.strip().split("\t")
        size_b, allocated_b = int(size), int(allocated)
        return {
            "backend": self.backend,
            "root": self.root_dataset,
            "pool": self.pool,
            "used_bytes": used,
            "available_bytes": available,
            "total_bytes": used + available,
            "used_pct": round(100.0 * used / (used + available), 1) if used + available else None,
            "pool_size_bytes": size_b,
            "pool_allocated_bytes": allocated_b,
            "pool_free_bytes": int(free),
            "pool_used_pct": round(100.0 * allocated_b / size_b, 1) if size_b else None,
            "health": health,
            "healthy": health == "ONLINE",
        }

    def ping(self) -> bool:
        try:
            return self._exists(self.root_dataset)
        except WorkspaceError:
            return False

    @staticmethod
    def _parse_snapshot_rows(text: str) -> list[SnapshotInfo]:
        rows = []
        for line in text.splitlines():
            if not line.strip():
                continue
            full_name, creation, used = line.split("\t")
            rows.append(
                SnapshotInfo(
                    name=full_name.rpartition("@")[2],
                    full_name=full_name,
                    created_at=datetime.fromtimestamp(int(creation), tz=UTC),
                    size_bytes=int(used),
                )
            )
        return rows
