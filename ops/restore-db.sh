#!/usr/bin/env bash
# Restore a backup made by ops/backup-db.sh into a database.
#
#   ops/restore-db.sh BACKUP_FILE [--into NAME] [--force]
#
#   DATABASE_URL  mysql://user:password@host:port/name of the server and default target.
#   --into NAME   restore into this database instead (created if missing): restore drills and
#                 inspecting an old backup never touch the live database.
#   --force       allowed to restore into a database that already has tables (they are
#                 dropped first). Without it a non-empty target is refused.
#
# Stop the api, worker and beat first when restoring the live database (docs/runbook.md
# "Restore"). The .sha256 beside the backup is verified when present.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

backup="" into="" force=0
while [ $# -gt 0 ]; do
    case "$1" in
        --into) into="${2:?--into needs a database name}"; shift 2 ;;
        --force) force=1; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        -*) die "unknown option $1" ;;
        *) backup="$1"; shift ;;
    esac
done
[ -n "$backup" ] || die "usage: restore-db.sh BACKUP_FILE [--into NAME] [--force]"
[ -f "$backup" ] || die "$backup does not exist"
[ -n "${DATABASE_URL:-}" ] || die "set DATABASE_URL (mysql://user:password@host:port/name)"
parse_db_url "$DATABASE_URL"
target="${into:-$DB_NAME}"
[[ "$target" =~ ^[A-Za-z0-9_]+$ ]] || die "database name $target is not a plain identifier"

if [ -f "$backup.sha256" ]; then
    (cd "$(dirname "$backup")" && sha256sum --quiet -c "$(basename "$backup").sha256") \
        || die "checksum mismatch: $backup is damaged"
fi
gzip -t "$backup" || die "$backup is not a valid gzip file"

cnf="$(write_client_cnf)"
trap 'rm -f "$cnf"' EXIT
client="$(command -v mariadb || command -v mysql || true)"
[ -n "$client" ] || die "mariadb/mysql client not found (apt-get install mariadb-client)"
sql() { "$client" "--defaults-extra-file=$cnf" -N -B "$@"; }

tables="$(sql -e "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='$target'")"
if [ "$tables" -gt 0 ]; then
    [ "$force" -eq 1 ] || die "database $target already has $tables tables; use --force to replace it"
    say "dropping the $tables existing tables of $target"
    sql -e "DROP DATABASE \`$target\`"
fi
sql -e "CREATE DATABASE IF NOT EXISTS \`$target\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"

say "restoring $backup into $target"
# The dump names its source database (CREATE DATABASE/USE); rewrite those two statements so it
# lands in the target, whatever the source was called.
zcat "$backup" \
    | sed -E -e '/^CREATE DATABASE /d' -e "s/^USE \`[^\`]+\`;/USE \`$target\`;/" \
    | "$client" "--defaults-extra-file=$cnf" --default-character-set=utf8mb4 "$target"
count="$(sql -e "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='$target'")"
say "restored $count tables into $target"
