"""manage.py undrain: leave maintenance mode; new sessions are accepted again."""
from __future__ import annotations

from django.core.management.base import BaseCommand

from medforge.accounts.services import audit_record
from medforge.ops.flags import MAINTENANCE, set_flag


class Command(BaseCommand):
    help = "Leave maintenance mode."

    def handle(self, *args, **opts):
        set_flag(MAINTENANCE, False)
        audit_record(actor=None, action="platform.undrain")
        self.stdout.write("maintenance off: new sessions accepted")
