"""`manage.py seed`: the permanent competitions, their datasets and deterministic demo data.

Idempotent: rows are created once (operator edits survive), files are written only when
missing or different, and real data (a manifest without `"demo": true`) is never touched.
How to install the real holdouts: see competitions/seeding.py.
"""
from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from competitions.seeding import seed_competitions


class Command(BaseCommand):
    help = "Create the permanent competitions with their datasets and demo data (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--no-data", action="store_true", help="create the rows only, write no files")

    def handle(self, *args, no_data: bool = False, **options):
        started = time.monotonic()
        report = self.stdout.write if options.get("verbosity", 1) >= 1 else (lambda _: None)
        slugs = seed_competitions(report=report, write_data=not no_data)
        report(self.style.SUCCESS(f"seeded {len(slugs)} competitions in {time.monotonic() - started:.1f} s"))
