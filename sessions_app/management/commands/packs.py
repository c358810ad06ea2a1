"""manage.py packs [list | register-local [--image-id sha256:...]]."""
from __future__ import annotations

import subprocess
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sessions_app import services
from sessions_app.models import Pack

BUILD = Path(settings.BASE_DIR) / "deploy" / "packs" / "local" / "build.sh"


class Command(BaseCommand):
    help = "List packs, or register the locally built pack (building it when no id is given)."

    def add_arguments(self, parser):
        parser.add_argument("action", nargs="?", default="list", choices=["list", "register-local"])
        parser.add_argument("--image-id", help="sha256:<64 hex> of an image already built.")

    def handle(self, *args, **opts):
        if opts["action"] == "register-local":
            image_id = opts["image_id"] or self._build()
            try:
                pack = services.pack_register_local(image_id=image_id)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"registered {pack.slug} -> {pack.image}")
            return
        for pack in Pack.objects.order_by("slug"):
            flags = " ".join(f for f, on in (("default", pack.is_default),
                                             ("deprecated", pack.deprecated)) if on)
            self.stdout.write(f"{pack.pk:>3} {pack.slug:20} {pack.exposure:9} {pack.image} {flags}")

    def _build(self) -> str:
        self.stderr.write(f"building the local pack with {BUILD} ...")
        done = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, check=False)
        lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
        if done.returncode != 0 or not lines:
            raise CommandError(f"{BUILD} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
        return lines[-1]
