"""A stand-in for the `zfs` and `zpool` CLIs, for testing ZfsWorkspaces on hosts without ZFS.

ZFS cannot run on the development and CI machines (no kernel module, no pool), so the tests
install this script as `zfs` and `zpool` on PATH. It appends every argv to the JSON-lines log
named by $FAKE_ZFS_LOG, keeps datasets and snapshots in the JSON file $FAKE_ZFS_STATE, mounts
dataset `a/b/c` at `$FAKE_ZFS_MOUNT_BASE/a/b/c` (a real directory, so chown works), and answers
the subset of commands ZfsWorkspaces uses with zfs's own output formats and error messages.
Run as a script only; it imports nothing from the project.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

POOL_SIZE = 1_000_000_000_000
POOL_ALLOCATED = 250_000_000_000


def _load() -> dict[str, Any]:
    path = Path(os.environ["FAKE_ZFS_STATE"])
    if path.exists():
        return json.loads(path.read_text())
    return {"datasets": {}, "snapshots": {}, "clock": 1_700_000_000}


def _save(state: dict[str, Any]) -> None:
    Path(os.environ["FAKE_ZFS_STATE"]).write_text(json.dumps(state, indent=1, sort_keys=True))


def _fail(message: str, code: int = 1) -> int:
    sys.stderr.write(message + "\n")
    return code


def _snap_store(full_name: str) -> Path:
    return Path(os.environ["FAKE_ZFS_STATE"]).parent / "fake-zfs-snapshots" / full_name.replace("/", "%")


def _options(args: list[str]) -> tuple[dict[str, str], list[str], set[str]]:
    """Split `-o k=v` pairs and single-letter flags from positional arguments."""
    props: dict[str, str] = {}
    flags: set[str] = set()
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-o", "-t", "-s") and i + 1 < len(args):
            if arg == "-o" and "=" in args[i + 1]:
                key, _, value = args[i + 1].partition("=")
                props[key] = value
            else:
                props[arg] = args[i + 1]
            i += 2
            continue
        if arg.startswith("-") and len(arg) > 1:
            flags.update(arg[1:])
        else:
            rest.append(arg)
        i += 1
    return props, rest, flags


def _new_dataset(state: dict[str, Any], name: str, props: dict[str, str], origin: str = "-") -> None:
    mountpoint = props.get("mountpoint") or f"{os.environ['FAKE_ZFS_MOUNT_BASE']}/{name}"
    state["datasets"][name] = {
        "mountpoint": mountpoint,
        "quota": props.get("quota", "none"),
        "origin": origin,
        "used": 98304,
        "available": 500_000_000_000,
    }
    Path(mountpoint).mkdir(parents=True, exist_ok=True)


def zfs(args: list[str]) -> int:
    state = _load()
    datasets, snapshots = state["datasets"], state["snapshots"]
    command, rest_args = args[0], args[1:]
    props, rest, flags = _options(rest_args)

    if command == "list":
        columns = props.get("-o", "name").split(",")
        if props.get("-t") == "snapshot":
            target = rest[0]
            if "@" in target:
                if target not in snapshots:
                    return _fail(f"cannot open '{target}': dataset does not exist")
                names = [target]
            else:
                if target not in datasets:
                    return _fail(f"cannot open '{target}': dataset does not exist")
                names = [
                    s for s in snapshots
                    if s.split("@")[0] == target or ("r" in flags and s.startswith(target + "/"))
                ]
            names.sort(key=lambda s: snapshots[s]["creation"])
            for name in names:
                row = {"name": name, **snapshots[name]}
                print("\t".join(str(row[c]) for c in columns))
            return 0
        target = rest[0]
        if target not in datasets:
            return _fail(f"cannot open '{target}': dataset does not exist")
        print("\t".join(str({"name": target, **datasets[target]}[c]) for c in columns))
        return 0

    if command == "create":
        name = rest[0]
        if name in datasets:
            return _fail(f"cannot create '{name}': dataset already exists")
        parent = name.rsplit("/", 1)[0]
        if parent not in datasets and "p" not in flags:
            return _fail(f"cannot create '{name}': parent does not exist")
        parts = name.split("/")
        for depth in range(1, len(parts)):
            ancestor = "/".join(parts[:depth])
            if ancestor not in datasets:
                _new_dataset(state, ancestor, {})
        _new_dataset(state, name, props)
        _save(state)
        return 0

    if command == "get":
        names, target = props["-o"], rest[-1]
        wanted = rest[0].split(",")
        if names != "value":
            return _fail("fake zfs: only -o value is supported", 2)
        if target not in datasets:
            return _fail(f"cannot open '{target}': dataset does not exist")
        for prop in wanted:
            print(datasets[target][prop])
        return 0

    if command == "snapshot":
        full = rest[0]
        dataset = full.split("@")[0]
        if dataset not in datasets:
            return _fail(f"cannot open '{dataset}': dataset does not exist")
        if full in snapshots:
            return _fail(f"cannot create snapshot '{full}': dataset already exists")
        state["clock"] += 1
        snapshots[full] = {"creation": state["clock"], "used": 0}
        shutil.copytree(datasets[dataset]["mountpoint"], _snap_store(full), symlinks=True)
        _save(state)
        return 0

    if command == "destroy":
        full = rest[0]
        if "@" not in full:
            return _fail("fake zfs: refusing to destroy a dataset in tests", 2)
        if full not in snapshots:
            return _fail("could not find any snapshots to destroy; check snapshot names.")
        if any(d["origin"] == full for d in datasets.values()):
            return _fail(f"cannot destroy '{full}': snapshot has dependent clones\n"
                         "use '-R' to destroy the following datasets:")
        del snapshots[full]
        shutil.rmtree(_snap_store(full), ignore_errors=True)
        _save(state)
        return 0

    if command == "clone":
        source, name = rest
        if source not in snapshots:
            return _fail(f"cannot open '{source}': dataset does not exist")
        if name in datasets:
            return _fail(f"cannot create '{name}': dataset already exists")
        parts = name.split("/")
        for depth in range(1, len(parts)):
            ancestor = "/".join(parts[:depth])
            if ancestor not in datasets:
                _new_dataset(state, ancestor, {})
        _new_dataset(state, name, props, origin=source)
        mountpoint = Path(datasets[name]["mountpoint"])
        shutil.rmtree(mountpoint)
        shutil.copytree(_snap_store(source), mountpoint, symlinks=True)
        _save(state)
        return 0

    return _fail(f"fake zfs: unsupported command {args!r}", 2)


def zpool(args: list[str]) -> int:
    if args[:1] == ["list"]:
        pool = args[-1]
        state = _load()
        if pool not in state["datasets"]:
            return _fail(f"cannot open '{pool}': no such pool")
        free = POOL_SIZE - POOL_ALLOCATED
        print(f"{pool}\t{POOL_SIZE}\t{POOL_ALLOCATED}\t{free}\tONLINE")
        return 0
    return _fail(f"fake zpool: unsupported command {args!r}", 2)


def main() -> int:
    program = os.path.basename(sys.argv[0])
    with open(os.environ["FAKE_ZFS_LOG"], "a") as log:
        log.write(json.dumps([program, *sys.argv[1:]]) + "\n")
    if program == "zpool":
        return zpool(sys.argv[1:])
    return zfs(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
