"""manage.py gpus [list | discover | enable N | disable N --reason TEXT]."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from sessions_app import selectors, services
from sessions_app.models import GPU


class Command(BaseCommand):
    help = "List GPUs, sync them from discovery (NVML/nvidia-smi/static), enable or disable one."

    def add_arguments(self, parser):
        parser.add_argument("action", nargs="?", default="list",
                            choices=["list", "discover", "sync", "enable", "disable"])
        parser.add_argument("index", nargs="?", type=int, help="GPU index (enable/disable).")
        parser.add_argument("--reason", default="", help="Why (shown to operators; audited).")

    def handle(self, *args, **opts):
        action = opts["action"]
        if action in ("discover", "sync"):
            report = services.gpus_sync()
            self.stdout.write(f"added {report['added']}, updated {report['updated']}, "
                              f"missing (disabled) {report['missing']}")
        elif action in ("enable", "disable"):
            if opts["index"] is None:
                raise CommandError(f"gpus {action} needs a GPU index")
            gpu = GPU.objects.filter(index=opts["index"]).first()
            if gpu is None:
                raise CommandError(f"no GPU with index {opts['index']} (run `gpus discover`)")
            services.gpu_set_enabled(gpu=gpu, enabled=action == "enable", by=None,
                                     reason=opts["reason"])
            self.stdout.write(f"GPU {gpu.index} {action}d")
        overview = selectors.gpu_overview()
        for row in overview["gpus"]:
            holder = f" s-{row['session']['slug']} ({row['session']['status']})" if row["session"] else ""
            note = f"  [{row['note']}]" if row["note"] else ""
            self.stdout.write(f"{row['index']:>3} {row['state']:9} {row['uuid']}  {row['name']}"
                              f"{holder}{note}")
        self.stdout.write(f"{overview['total']} GPU(s): {overview['in_use']} in use, "
                          f"{overview['free']} free, {overview['disabled']} disabled")
