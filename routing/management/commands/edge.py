"""`manage.py edge`: run the local edge (Caddy with deploy/caddy/Caddyfile.local) in the
foreground, so the sessions page's "Open IDE" links (s-<slug>.<exposure>.medforge.localhost)
work. The run command starts it next to the app server."""
from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from routing.edge import LOCAL_CADDYFILE, EdgeError, caddy_binary, edge_env


class Command(BaseCommand):
    help = "Run Caddy with the local Caddyfile (plain HTTP on loopback) in the foreground."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int,
                            default=int(os.environ.get("MEDFORGE_EDGE_PORT") or
                                        settings.PUBLIC_PORT or 8000),
                            help="edge port users open (default: PUBLIC_PORT, 8000)")
        parser.add_argument("--app", default=os.environ.get("MEDFORGE_APP_UPSTREAM",
                                                            "127.0.0.1:8001"),
                            help="the Django app server, host:port (default 127.0.0.1:8001)")
        parser.add_argument("--admin", default=os.environ.get("MEDFORGE_CADDY_ADMIN", "off"),
                            help='Caddy admin endpoint: "off" or host:port')

    def handle(self, *args, port: int, app: str, admin: str, **options):
        try:
            binary = caddy_binary()
        except EdgeError as exc:
            raise CommandError(str(exc)) from exc
        env = edge_env(edge_port=port, app_upstream=app, base_domain=settings.BASE_DOMAIN,
                       admin=admin, workdir=str(settings.VAR_DIR / "caddy"))
        self.stdout.write(f"edge: http://{settings.BASE_DOMAIN}:{port} → {app} "
                          f"(session hosts s-<slug>.<exposure>.{settings.BASE_DOMAIN})")
        self.stdout.flush()
        # Replace this process: signals from the run command reach Caddy directly.
        os.execve(binary, [binary, "run", "--config", str(LOCAL_CADDYFILE),
                           "--adapter", "caddyfile"], env)
