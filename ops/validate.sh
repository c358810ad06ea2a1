#!/usr/bin/env bash
# Walk the whole platform on one machine: the checks of docs/runbook.md "Validate a deployment".
#
#   ops/validate.sh BASE_URL            e.g. http://medforge.localhost:8000 or https://medforge.example.org
#
#   MEDFORGE_SMOKE_EMAIL / MEDFORGE_SMOKE_PASSWORD   an account for the login and session checks
#   VALIDATE_SESSION=1   start and stop a real session through the API and the edge (default 1)
#   VALIDATE_EDGE=1      BASE_URL is the edge (Caddy): also check session-host protection (default 1)
#   VALIDATE_HOST=1      also check this host's Docker engine and session networks (default 1)
#   METRICS_TOKEN        sent to /metrics when set
#   CURL_OPTS            extra curl options (e.g. -k for a private CA)
#
# Prints PASS/FAIL per check and exits 1 if any failed.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

BASE="${1:-}"
[ -n "$BASE" ] || die "usage: validate.sh BASE_URL"
BASE="${BASE%/}"
VALIDATE_SESSION="${VALIDATE_SESSION:-1}"
VALIDATE_EDGE="${VALIDATE_EDGE:-1}"
VALIDATE_HOST="${VALIDATE_HOST:-1}"
PY="$REPO_DIR/.venv/bin/python"; [ -x "$PY" ] || PY=python3
hostport="${BASE#*://}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"
port=""; [[ "$hostport" == *:* ]] && port=":${hostport##*:}"
scheme="${BASE%%://*}"
failures=0
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT

pass() { echo "PASS $1${2:+: $2}"; }
fail() { echo "FAIL $1${2:+: $2}"; failures=$((failures + 1)); }

# http NAME EXPECTED_STATUS URL [curl args...] → body in $tmp/NAME
http() {
    local name="$1" want="$2" url="$3"; shift 3
    local code
    # shellcheck disable=SC2086
    code="$(curl -sS -o "$tmp/$name" -w '%{http_code}' --max-time 20 ${CURL_OPTS:-} "$@" "$url" 2>"$tmp/$name.err")"
    if [ "$code" = "$want" ]; then pass "$name" "$url → $code"; return 0; fi
    fail "$name" "$url → ${code:-no answer} (expected $want) $(head -c 200 "$tmp/$name" "$tmp/$name.err" 2>/dev/null | tr '\n' ' ')"
    return 1
}

json() {  # json FILE PYTHON_EXPR(d) → prints the value
    "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1" 2>/dev/null
}

echo "validate: $BASE"
http healthz 200 "$BASE/healthz"
http ready 200 "$BASE/api/ready"
if http status 200 "$BASE/api/v2/status"; then
    free="$(json "$tmp/status" 'd["data"]["gpus"]["free"]')"
    total="$(json "$tmp/status" 'd["data"]["gpus"]["total"]')"
    pool="$(json "$tmp/status" 'd["data"]["storage"]["healthy"]')"
    if [ "${total:-0}" -gt 0 ] 2>/dev/null; then pass gpus "$free of $total free"; else fail gpus "no GPUs registered (manage.py gpus discover)"; fi
    if [ "$pool" = "True" ]; then pass storage "workspace store healthy"; else fail storage "workspace store unhealthy: $(json "$tmp/status" 'd["data"]["storage"]')"; fi
    enabled="$(json "$tmp/status" 'd["data"]["reconcile"]["enabled"]')"
    age="$(json "$tmp/status" 'd["data"]["reconcile"]["heartbeat_age_seconds"]')"
    if [ "$enabled" = "True" ]; then
        if [ "$age" != "None" ] && [ -n "$age" ]; then pass reconcile "last pass ${age}s ago"; else fail reconcile "no reconcile heartbeat yet (beat/worker running?)"; fi
    fi
fi
http schema 200 "$BASE/api/v2/schema/?format=json"
metrics_auth=(); [ -n "${METRICS_TOKEN:-}" ] && metrics_auth=(-H "Authorization: Bearer $METRICS_TOKEN")
if curl -sS -o "$tmp/metrics" -w '%{http_code}' --max-time 20 ${CURL_OPTS:-} "${metrics_auth[@]}" "$BASE/metrics" 2>/dev/null | grep -q 200; then
    if grep -q '^medforge_sessions{' "$tmp/metrics"; then pass metrics "/metrics exposes medforge_sessions"; else fail metrics "/metrics lacks medforge_sessions"; fi
else
    echo "SKIP metrics: /metrics is restricted from here (set METRICS_TOKEN, or scrape from an allowed network)"
fi

if [ "$VALIDATE_EDGE" = "1" ]; then
    # A session host with no credentials: forward_auth refuses before anything reaches a container.
    http session_host_needs_auth 401 "$BASE/" -H "Host: s-aaaaaaaa.external.$host$port"
    # Forged upstream headers from a client never steer the edge.
    http forged_upstream_ignored 401 "$BASE/" -H "Host: s-aaaaaaaa.external.$host$port" -H "X-Upstream: 127.0.0.1:22"
    # The auth endpoint itself is not reachable on a session host.
    http auth_endpoint_hidden_on_session_host 403 "$BASE/api/v2/auth/session-proxy" -H "Host: s-aaaaaaaa.external.$host$port"
fi

if [ -n "${MEDFORGE_SMOKE_EMAIL:-}" ] && [ -n "${MEDFORGE_SMOKE_PASSWORD:-}" ]; then
    smoke_args=("$BASE")
    [ "$VALIDATE_SESSION" = "1" ] && smoke_args+=(--session)
    [[ " ${CURL_OPTS:-} " == *" -k "* ]] && smoke_args+=(--insecure)
    if (cd "$REPO_DIR" && "$PY" manage.py smoke "${smoke_args[@]}" >"$tmp/smoke" 2>&1); then
        pass smoke "$(tail -n 1 "$tmp/smoke")"
    else
        sed 's/^/    /' "$tmp/smoke"
        fail smoke "manage.py smoke failed"
    fi
else
    fail smoke "set MEDFORGE_SMOKE_EMAIL and MEDFORGE_SMOKE_PASSWORD to check login, competitions and sessions"
fi

if [ "$VALIDATE_HOST" = "1" ] && command -v docker >/dev/null 2>&1; then
    if docker info >/dev/null 2>&1; then pass docker "engine answers"; else fail docker "the Docker engine does not answer"; fi
    internal="$(docker network inspect "${SESSION_INTERNAL_NETWORK:-medforge-internal-sessions}" -f '{{.Internal}}' 2>/dev/null || true)"
    case "$internal" in
        true) pass internal_network "no egress (internal: true)" ;;
        false) fail internal_network "exists WITHOUT internal: true — internal sessions would have egress" ;;
        *) echo "SKIP internal_network: not created yet (the first session start creates it)" ;;
    esac
    leftovers="$(docker ps -a --filter label=medforge.managed=true --filter status=exited -q | wc -l)"
    if [ "$leftovers" -eq 0 ]; then pass containers "no exited session containers"; else fail containers "$leftovers exited session containers (ops/cleanup.sh)"; fi
fi

if [ "$failures" -gt 0 ]; then echo "validate: $failures check(s) failed"; exit 1; fi
echo "validate: all checks passed"
