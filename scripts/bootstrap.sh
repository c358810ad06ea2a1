#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs requirements.txt when it changed. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing requirements.txt"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 \
    | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import django, rest_framework, celery, MySQLdb, docker" \
    || { echo "bootstrap: requirements failed to install" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
# The command-line client (cli/; its dependencies come with requirements.txt): the `medforge`
# entry point for the local run and the tests. Editable, so cli/ edits need no reinstall.
if [ ! -x .venv/bin/medforge ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e ./cli \
    || { echo "bootstrap: installing cli/ failed" >&2; exit 1; }
fi
