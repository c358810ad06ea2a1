# Shared helpers for the ops/ scripts (sourced, not run).
#
# manage ARGS...   runs `manage.py ARGS` where the platform runs:
#   MEDFORGE_RUN=compose  inside the api container (docker compose exec), the production default
#   MEDFORGE_RUN=local    with this checkout's .venv (development, the local stack)
# Default: compose when deploy/compose/.env exists, local otherwise.

OPS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$OPS_DIR/.." && pwd)"
COMPOSE_DIR="$REPO_DIR/deploy/compose"

say() { echo "$(basename "$0"): $*" >&2; }
die() { echo "$(basename "$0"): ERROR: $*" >&2; exit 1; }

run_mode() {
    if [ -n "${MEDFORGE_RUN:-}" ]; then
        echo "$MEDFORGE_RUN"
    elif [ -f "$COMPOSE_DIR/.env" ]; then
        echo compose
    else
        echo local
    fi
}

compose() {
    docker compose --project-directory "$COMPOSE_DIR" -f "$COMPOSE_DIR/docker-compose.yml" \
        --env-file "$COMPOSE_DIR/.env" "$@"
}

manage() {
    case "$(run_mode)" in
        compose) compose exec -T api python manage.py "$@" ;;
        local)
            local py="$REPO_DIR/.venv/bin/python"
            [ -x "$py" ] || py=python3
            (cd "$REPO_DIR" && "$py" manage.py "$@")
            ;;
        *) die "MEDFORGE_RUN must be compose or local, not $(run_mode)" ;;
    esac
}

# parse_db_url URL → sets DB_HOST DB_PORT DB_USER DB_PASS DB_NAME (mysql://user:pass@host:port/name)
parse_db_url() {
    local url="$1" rest auth hostport
    case "$url" in
        mysql://*|mariadb://*) ;;
        *) die "DATABASE_URL must be mysql://user:password@host:port/name (got ${url%%:*}://…)" ;;
    esac
    rest="${url#*://}"
    DB_NAME="${rest##*/}"; DB_NAME="${DB_NAME%%\?*}"
    rest="${rest%/*}"
    if [[ "$rest" == *@* ]]; then auth="${rest%@*}"; hostport="${rest##*@}"; else auth=""; hostport="$rest"; fi
    DB_USER="${auth%%:*}"
    if [[ "$auth" == *:* ]]; then DB_PASS="${auth#*:}"; else DB_PASS=""; fi
    DB_HOST="${hostport%%:*}"
    if [[ "$hostport" == *:* ]]; then DB_PORT="${hostport##*:}"; else DB_PORT=3306; fi
    DB_USER="${DB_USER:-root}"
    [ -n "$DB_NAME" ] || die "no database name in DATABASE_URL"
    # Percent-encoded passwords (e.g. %40 for @) are decoded here.
    DB_PASS="$(printf '%b' "${DB_PASS//%/\\x}")"
}

# A client defaults file keeps the password off the command line (ps shows argv).
write_client_cnf() {
    local cnf
    cnf="$(mktemp)"
    chmod 600 "$cnf"
    {
        echo "[client]"
        echo "host=$DB_HOST"
        echo "port=$DB_PORT"
        echo "user=$DB_USER"
        [ -n "$DB_PASS" ] && echo "password=$DB_PASS"
        echo "protocol=tcp"
    } >"$cnf"
    echo "$cnf"
}
