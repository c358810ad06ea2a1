"""manage.py cleanup [--force]: containers labelled as MedForge's with no active session.
A dry run unless --force."""
from __future__ import annotations

from django.core.management.base import BaseCommand

from sessions_app.reconcile import cleanup_orphans


class Command(BaseCommand):
    help = "List (or with --force remove) platform containers that have no active session."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Really remove them.")

    def handle(self, *args, **opts):
        orphans = cleanup_orphans(force=opts["force"])
        verb = "removed" if opts["force"] else "would remove"
        for orphan in orphans:
            self.stdout.write(f"{verb}: {orphan.name} ({orphan.id[:12]}, {orphan.status}, "
                              f"session {orphan.session_id or '-'})")
        tail = "" if opts["force"] or not orphans else " (dry run; add --force)"
        self.stdout.write(f"{len(orphans)} orphan container(s) {verb}{tail}")
