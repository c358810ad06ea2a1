#!/usr/bin/env bash
# Orphaned session containers (labelled medforge.managed=true with no active session row):
#   ops/cleanup.sh            list them
#   ops/cleanup.sh --force    remove them
set -euo pipefail
source "$(dirname "$0")/lib.sh"
manage cleanup "$@"
