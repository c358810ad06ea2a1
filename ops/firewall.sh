#!/usr/bin/env bash
# Session network firewall: only the edge (Caddy) — and the worker's readiness probe — may open
# connections to a session IDE (tcp/8080); sessions cannot reach each other, the edge, the
# worker or the host itself. Rules live in Docker's DOCKER-USER chain (evaluated before
# Docker's own) and in INPUT, inside a dedicated MEDFORGE-SESSIONS chain so --remove is clean.
#
#   ops/firewall.sh --apply     install (idempotent: the chain is rebuilt)
#   ops/firewall.sh --dry-run   print the iptables commands instead (default)
#   ops/firewall.sh --remove    take the rules out
#
# Addresses come from deploy/compose/.env (same variables as docker-compose.yml):
#   SESSION_EXTERNAL_SUBNET SESSION_INTERNAL_SUBNET EDGE_EXTERNAL_IP EDGE_INTERNAL_IP
#   WORKER_EXTERNAL_IP WORKER_INTERNAL_IP; bridges mf-ext0/mf-int0 (compose driver_opts).
# Persist across reboots with iptables-persistent (netfilter-persistent save) or by running
# this from a systemd unit after docker.service; docs/runbook.md "Firewall".
set -euo pipefail
source "$(dirname "$0")/lib.sh"

mode="dry-run"
case "${1:---dry-run}" in
    --apply) mode=apply ;;
    --dry-run) mode=dry-run ;;
    --remove) mode=remove ;;
    *) die "usage: firewall.sh [--dry-run|--apply|--remove]" ;;
esac

if [ -f "$COMPOSE_DIR/.env" ]; then set -a; source "$COMPOSE_DIR/.env"; set +a; fi
EXT_NET="${SESSION_EXTERNAL_SUBNET:-172.31.240.0/24}"
INT_NET="${SESSION_INTERNAL_SUBNET:-172.31.241.0/24}"
EXT_BR="${SESSION_EXTERNAL_BRIDGE:-mf-ext0}"
INT_BR="${SESSION_INTERNAL_BRIDGE:-mf-int0}"
EDGE_EXT="${EDGE_EXTERNAL_IP:-172.31.240.2}"
EDGE_INT="${EDGE_INTERNAL_IP:-172.31.241.2}"
WORKER_EXT="${WORKER_EXTERNAL_IP:-172.31.240.3}"
WORKER_INT="${WORKER_INTERNAL_IP:-172.31.241.3}"
IDE_PORT="${SESSION_IDE_PORT:-8080}"
CHAIN=MEDFORGE-SESSIONS
IPT="${IPTABLES:-iptables}"

run() {
    if [ "$mode" = dry-run ]; then echo "$IPT $*"; else "$IPT" "$@"; fi
}
quiet() {  # for commands allowed to fail (chain absent, rule absent)
    if [ "$mode" = dry-run ]; then echo "$IPT $* || true"; else "$IPT" "$@" 2>/dev/null || true; fi
}

remove_rules() {
    quiet -D DOCKER-USER -j "$CHAIN"
    quiet -D INPUT -i "$EXT_BR" -j "$CHAIN-IN"
    quiet -D INPUT -i "$INT_BR" -j "$CHAIN-IN"
    quiet -F "$CHAIN"
    quiet -X "$CHAIN"
    quiet -F "$CHAIN-IN"
    quiet -X "$CHAIN-IN"
}

if [ "$mode" = apply ] && [ "$(id -u)" -ne 0 ]; then die "--apply needs root"; fi
remove_rules
[ "$mode" = remove ] && { say "rules removed"; exit 0; }

run -N "$CHAIN"
for pair in "$EXT_BR:$EXT_NET:$EDGE_EXT:$WORKER_EXT" "$INT_BR:$INT_NET:$EDGE_INT:$WORKER_INT"; do
    IFS=: read -r br net edge worker <<<"$pair"
    # Replies to connections the edge/worker opened.
    run -A "$CHAIN" -i "$br" -o "$br" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    # The edge proxies IDE traffic; the worker probes readiness before marking a session running.
    run -A "$CHAIN" -i "$br" -o "$br" -s "$edge" -d "$net" -p tcp --dport "$IDE_PORT" -j ACCEPT
    run -A "$CHAIN" -i "$br" -o "$br" -s "$worker" -d "$net" -p tcp --dport "$IDE_PORT" -j ACCEPT
    # Everything else between containers of a session network: session↔session, session→edge,
    # session→worker. (compose also sets enable_icc=false; this holds without it.)
    run -A "$CHAIN" -i "$br" -o "$br" -j DROP
    # The IDE port from anywhere else (another network, a port published by mistake).
    run -A "$CHAIN" -d "$net" -p tcp --dport "$IDE_PORT" -j DROP
done
run -A "$CHAIN" -j RETURN
run -I DOCKER-USER 1 -j "$CHAIN"

# Sessions must not reach services on the host itself (MariaDB, Redis, the Docker API, sshd).
run -N "$CHAIN-IN"
run -A "$CHAIN-IN" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
run -A "$CHAIN-IN" -j DROP
run -I INPUT 1 -i "$EXT_BR" -j "$CHAIN-IN"
run -I INPUT 1 -i "$INT_BR" -j "$CHAIN-IN"

[ "$mode" = apply ] && say "rules installed (chains $CHAIN, $CHAIN-IN)"
exit 0
