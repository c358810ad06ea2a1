#!/usr/bin/env bash
# Back up the MedForge database: a consistent dump (mysqldump --single-transaction: InnoDB is
# read at one instant without locking writers), gzip-compressed, with a .sha256 beside it.
#
#   ops/backup-db.sh [OUTPUT_FILE]
#
#   DATABASE_URL   mysql://user:password@host:port/name   (default: from deploy/compose/.env
#                  for the compose deployment: the db service published through `compose exec`)
#   BACKUP_DIR     where OUTPUT_FILE goes when not given (default /srv/medforge/backups)
#   BACKUP_KEEP    keep this many newest backups in BACKUP_DIR (default 14; 0 = keep all)
#
# Prints the backup's path as the last line. Exit status non-zero on any failure; a failed
# dump never leaves a file that looks complete (written to a temporary name, renamed at the end).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

BACKUP_DIR="${BACKUP_DIR:-/srv/medforge/backups}"
BACKUP_KEEP="${BACKUP_KEEP:-14}"
out="${1:-}"

dump_cmd=()
if [ -n "${DATABASE_URL:-}" ]; then
    parse_db_url "$DATABASE_URL"
    cnf="$(write_client_cnf)"
    trap 'rm -f "$cnf"' EXIT
    dumper="$(command -v mariadb-dump || command -v mysqldump || true)"
    [ -n "$dumper" ] || die "mariadb-dump/mysqldump not found (apt-get install mariadb-client)"
    dump_cmd=("$dumper" "--defaults-extra-file=$cnf")
elif [ "$(run_mode)" = compose ]; then
    set -a; source "$COMPOSE_DIR/.env"; set +a
    DB_NAME="${DB_NAME:-medforge}"
    dump_cmd=(compose exec -T -e "MYSQL_PWD=${DB_ROOT_PASSWORD:?}" db mariadb-dump -uroot)
else
    die "set DATABASE_URL (or run where deploy/compose/.env exists)"
fi

if [ -z "$out" ]; then
    mkdir -p "$BACKUP_DIR"
    out="$BACKUP_DIR/medforge-${DB_NAME}-$(date -u +%Y%m%dT%H%M%SZ).sql.gz"
fi
tmp="$out.partial"
rm -f "$tmp"

say "dumping database $DB_NAME → $out"
# --single-transaction: consistent snapshot; --routines/--triggers/--events: everything;
# --hex-blob: binary columns survive any client charset.
if ! "${dump_cmd[@]}" --single-transaction --quick --routines --triggers --events --hex-blob \
        --default-character-set=utf8mb4 --databases "$DB_NAME" \
        | gzip -c >"$tmp"; then
    rm -f "$tmp"
    die "the dump failed"
fi
gzip -t "$tmp" || { rm -f "$tmp"; die "the compressed dump is corrupt"; }
# A dump ends with a completion comment; its absence means it stopped early.
zcat "$tmp" | tail -n 1 | grep -q "Dump completed" || { rm -f "$tmp"; die "the dump is incomplete"; }
mv "$tmp" "$out"
(cd "$(dirname "$out")" && sha256sum "$(basename "$out")" >"$(basename "$out").sha256")

if [ "$BACKUP_KEEP" -gt 0 ] && [ -z "${1:-}" ]; then
    ls -1t "$BACKUP_DIR"/medforge-*.sql.gz 2>/dev/null | tail -n +"$((BACKUP_KEEP + 1))" | while read -r old; do
        say "removing old backup $old"
        rm -f "$old" "$old.sha256"
    done
fi
say "done ($(du -h "$out" | cut -f1))"
echo "$out"
