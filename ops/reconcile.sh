#!/usr/bin/env bash
# One reconcile pass now (what beat runs every SESSION_POLL_INTERVAL_SECONDS): repairs sessions
# whose containers died, finishes stuck stops, fails stuck starts, reports orphans.
#   ops/reconcile.sh [manage.py reconcile options]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
manage reconcile "$@"
