"""Create (or reset) the demo administrator and demo user of the local run. Idempotent."""
from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand

from medforge.accounts.models import User

DEFAULT_PASSWORD = "medforge-demo-2026"


class Command(BaseCommand):
    help = "Create the demo admin and demo user (local run only)."

    def add_arguments(self, parser):
        parser.add_argument("--password", default=os.environ.get("MEDFORGE_DEMO_PASSWORD",
                                                                 DEFAULT_PASSWORD))

    def handle(self, *args, password: str, **options):
        if settings.PRODUCTION:
            self.stderr.write("demo_users refuses to run in production")
            raise SystemExit(2)
        domain = settings.BASE_DOMAIN
        specs = [
            (f"admin@{domain}", "admin", dict(is_staff=True, is_superuser=True,
                                               can_use_internal=True, max_concurrent_sessions=4)),
            (f"demo@{domain}", "demo", dict(can_use_internal=False, max_concurrent_sessions=1)),
            (f"researcher@{domain}", "researcher", dict(can_use_internal=True,
                                                        max_concurrent_sessions=2)),
        ]
        for email, handle, extra in specs:
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(email=email, password=password, handle=handle,
                                                display_name=handle.title(), **extra)
                verb = "created"
            else:
                for k, v in extra.items():
                    setattr(user, k, v)
                user.set_password(password)
                user.save()
                verb = "reset"
            self.stdout.write(f"{verb} {email} / {password}")
