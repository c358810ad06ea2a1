"""manage.py snapshots [slug | --user ID]: list workspace snapshots."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from sessions_app.models import Session, Snapshot


class Command(BaseCommand):
    help = "List snapshots of one session (by slug) or of one user (--user ID), or all."

    def add_arguments(self, parser):
        parser.add_argument("slug", nargs="?", help="Session slug (with or without s-).")
        parser.add_argument("--user", type=int, help="Owner's user id.")
        parser.add_argument("--all", action="store_true", help="Include pruned snapshots.")

    def handle(self, *args, **opts):
        qs = Snapshot.objects.select_related("session", "owner").order_by("created_at")
        if opts["slug"]:
            slug = opts["slug"].removeprefix("s-")
            if not Session.objects.filter(slug=slug).exists():
                raise CommandError(f"no session with slug {slug!r}")
            qs = qs.filter(session__slug=slug)
        if opts["user"] is not None:
            qs = qs.filter(owner_id=opts["user"])
        if not opts["all"]:
            qs = qs.filter(deleted_at__isnull=True)
        count = 0
        for snap in qs:
            count += 1
            size = "-" if snap.size_bytes is None else f"{snap.size_bytes}"
            pruned = f" pruned {snap.deleted_at:%Y-%m-%d}" if snap.deleted_at else ""
            self.stdout.write(f"{snap.created_at:%Y-%m-%d %H:%M:%S} {snap.kind:6} {size:>12}  "
                              f"{snap.full_name}  s-{snap.session.slug} {snap.owner.email}{pruned}")
        self.stdout.write(f"{count} snapshot(s)")
