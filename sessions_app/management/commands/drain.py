"""manage.py drain [--reason TEXT]: refuse new sessions (503 maintenance); running ones stay."""
from __future__ import annotations

from django.core.management.base import BaseCommand

from medforge.accounts.services import audit_record
from medforge.ops.flags import MAINTENANCE, set_flag
from sessions_app.selectors import active_session_count


class Command(BaseCommand):
    help = "Enter maintenance mode: new sessions are refused, running sessions are untouched."

    def add_arguments(self, parser):
        parser.add_argument("--reason", default="upgrade", help="Shown to operators.")

    def handle(self, *args, **opts):
        set_flag(MAINTENANCE, True, reason=opts["reason"])
        audit_record(actor=None, action="platform.drain", data={"reason": opts["reason"]})
        active = active_session_count()
        self.stdout.write(f"maintenance on: new sessions refused; {active} active session(s) "
                          "keep running")
