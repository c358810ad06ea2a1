"""manage.py prune_snapshots: apply the snapshot retention policy (dry run unless --force)."""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sessions_app.retention import snapshots_prune


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


class Command(BaseCommand):
    help = ("Delete snapshots outside the retention policy: per user keep the newest "
            "--keep (SNAPSHOT_KEEP_PER_USER) and all younger than --days (SNAPSHOT_KEEP_DAYS). "
            "Lists what would go unless --force.")

    def add_arguments(self, parser):
        parser.add_argument("--keep", type=int, default=None,
                            help="snapshots kept per user (default SNAPSHOT_KEEP_PER_USER)")
        parser.add_argument("--days", type=int, default=None,
                            help="keep every snapshot younger than this (default SNAPSHOT_KEEP_DAYS)")
        parser.add_argument("--user", type=int, default=None, help="only this user id")
        parser.add_argument("--force", action="store_true",
                            help="really destroy them (default: dry run)")

    def handle(self, *args, keep, days, user, force, **options):
        keep = settings.SNAPSHOT_KEEP_PER_USER if keep is None else keep
        days = settings.SNAPSHOT_KEEP_DAYS if days is None else days
        if keep < 0 or days < 0:
            raise CommandError("--keep and --days must be 0 or more")
        result = snapshots_prune(keep_per_user=keep, keep_days=days, force=force, user_id=user)
        mode = "removing" if force else "dry run, would remove"
        self.stdout.write(f"policy: keep newest {keep} per user and all younger than {days} "
                          f"days; {mode} {len(result.candidates)} snapshot(s)")
        failed = {snap.pk: reason for snap, reason in result.failed}
        for snap in result.candidates:
            if not force:
                state = "would delete"
            elif snap.pk in failed:
                state = f"FAILED ({failed[snap.pk]})"
            else:
                state = "deleted"
            self.stdout.write(
                f"  {state}: {snap.full_name}  user={snap.owner_id} "
                f"created={snap.created_at:%Y-%m-%dT%H:%M:%SZ} size={_size(snap.size_bytes)}")
        if force:
            self.stdout.write(f"removed {len(result.removed)}, failed {len(result.failed)}")
            if result.failed:
                raise CommandError(f"{len(result.failed)} snapshot(s) could not be destroyed")
        else:
            self.stdout.write("nothing was changed; run with --force to delete")
