#!/usr/bin/env bash
# Workspace snapshots.
#   ops/snapshots.sh list [SLUG | --user ID]      snapshots of a session or a user
#   ops/snapshots.sh prune [--keep N] [--days D]  retention dry run (what would be deleted)
#   ops/snapshots.sh prune --force                delete snapshots outside the policy
# Schedule `prune --force` daily (cron/systemd timer); docs/runbook.md "Snapshots".
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cmd="${1:-list}"
shift || true
case "$cmd" in
    list) manage snapshots "$@" ;;
    prune) manage prune_snapshots "$@" ;;
    *) die "usage: snapshots.sh list [SLUG|--user ID] | prune [--force] [--keep N] [--days D]" ;;
esac
