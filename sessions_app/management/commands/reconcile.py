"""manage.py reconcile: one reconcile pass now (ignores backoff), printing what it corrected."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from sessions_app.reconcile import reconcile_run


class Command(BaseCommand):
    help = "Run one reconcile pass between the database and the Docker engine."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, **opts):
        try:
            report = reconcile_run(force=True)
        except Exception as exc:
            raise CommandError(f"reconcile failed: {exc}") from exc
        if report is None:
            raise CommandError("another reconcile pass is running; try again in a moment")
        if opts["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        self.stdout.write(f"{report.sessions} active session(s), {report.containers} container(s), "
                          f"{report.docker_calls} Docker call(s), {report.seconds * 1000:.0f} ms")
        for action, slug, result in report.actions:
            self.stdout.write(f"  {action}: s-{slug} -> {result}")
        for orphan in report.orphans:
            self.stdout.write(self.style.WARNING(
                f"  orphan: {orphan.name} ({orphan.id[:12]}, {orphan.status}) has no active "
                "session; `manage.py cleanup --force` removes it"))
