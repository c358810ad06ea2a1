"""The house's floors (docs/architecture.md) are enforced: a lower floor never imports an upper
one, and runtime/ imports no platform app. The contracts live in .importlinter."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def lint_imports(config: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(exe), "--no-cache", "--config", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_every_floor_contract_is_kept():
    done = lint_imports(ROOT / ".importlinter")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


def test_an_import_up_a_floor_breaks_the_build(tmp_path):
    """The check is not vacuous: a base module that imports the web UI is reported."""
    probe = ROOT / "medforge" / "ops" / "_floor_probe.py"
    probe.write_text("import web.views  # noqa: F401\n")
    try:
        done = lint_imports(ROOT / ".importlinter")
    finally:
        probe.unlink()
    assert done.returncode != 0
    assert "medforge is not allowed to import web" in done.stdout
