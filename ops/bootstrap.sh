#!/usr/bin/env bash
# Prepare a GPU host for MedForge (Debian 12 / Ubuntu 22.04+), idempotent:
#   1. packages: Docker engine + compose plugin, ZFS utilities, MariaDB client, iptables
#   2. ZFS: the pool (only with --devices, never over existing data) and the workspace dataset
#      mounted below the data directory, so session bind mounts see it
#   3. NVIDIA container toolkit, when the host has an NVIDIA driver (nvidia-smi works)
#   4. data directories (training, public-eval, holdouts 0700, submissions, backups)
#   5. kernel: br_netfilter, so bridge traffic passes iptables (firewall, enable_icc=false)
#   6. deploy/compose/.env from .env.example with generated secrets, when missing
#   7. networks: refuses pre-existing session networks compose did not create (wrong flags)
#   8. firewall (ops/firewall.sh --apply) after the stack is up: run it yourself then
#
#   sudo ops/bootstrap.sh [--pool tank] [--devices "/dev/nvme1n1 /dev/nvme2n1"]
#                         [--data-dir /srv/medforge] [--no-nvidia] [--dry-run]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

POOL=tank DEVICES="" DATA_DIR=/srv/medforge NVIDIA=auto DRY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --pool) POOL="$2"; shift 2 ;;
        --devices) DEVICES="$2"; shift 2 ;;
        --data-dir) DATA_DIR="$2"; shift 2 ;;
        --no-nvidia) NVIDIA=no; shift ;;
        --dry-run) DRY=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) die "unknown option $1" ;;
    esac
done
DATASET="$POOL/medforge/workspaces"

do_() { if [ "$DRY" = 1 ]; then echo "+ $*"; else "$@"; fi; }
[ "$DRY" = 1 ] || [ "$(id -u)" -eq 0 ] || die "run as root (or with --dry-run)"

# 1. packages -----------------------------------------------------------------------------------
want=()
command -v docker >/dev/null 2>&1 || want+=(docker.io)
docker compose version >/dev/null 2>&1 || want+=(docker-compose-plugin)
command -v zfs >/dev/null 2>&1 || want+=(zfsutils-linux)
command -v mariadb-dump >/dev/null 2>&1 || command -v mysqldump >/dev/null 2>&1 || want+=(mariadb-client)
command -v iptables >/dev/null 2>&1 || want+=(iptables)
if [ "${#want[@]}" -gt 0 ]; then
    say "installing ${want[*]} (ZFS needs the contrib component on Debian)"
    do_ apt-get update
    do_ env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${want[@]}"
fi

# 2. ZFS -----------------------------------------------------------------------------------------
if zpool list -H -o name "$POOL" >/dev/null 2>&1; then
    say "pool $POOL exists ($(zpool list -H -o health "$POOL"))"
elif [ -n "$DEVICES" ]; then
    say "creating pool $POOL on $DEVICES"
    # shellcheck disable=SC2086
    do_ zpool create -o ashift=12 -O compression=lz4 -O atime=off -O xattr=sa \
        -O acltype=posixacl -O mountpoint=none "$POOL" $DEVICES
else
    say "no pool $POOL: create it with --devices, or set WORKSPACE_BACKEND=directory (development)"
fi
if [ "$DRY" = 1 ] || zpool list -H -o name "$POOL" >/dev/null 2>&1; then
    if ! zfs list -H -o name "$DATASET" >/dev/null 2>&1; then
        do_ zfs create -p -o mountpoint="$DATA_DIR/workspaces" "$DATASET"
    fi
    say "workspaces: dataset $DATASET at $DATA_DIR/workspaces (WORKSPACE_ZFS_ROOT=$DATASET)"
fi

# 3. NVIDIA container toolkit ------------------------------------------------------------------
if [ "$NVIDIA" != no ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    if ! command -v nvidia-ctk >/dev/null 2>&1; then
        say "installing the NVIDIA container toolkit"
        keyring=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
        do_ sh -c "curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | gpg --dearmor -o $keyring"
        do_ sh -c "curl -fsSL https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list \
            | sed 's#deb https://#deb [signed-by=$keyring] https://#g' > /etc/apt/sources.list.d/nvidia-container-toolkit.list"
        do_ apt-get update
        do_ env DEBIAN_FRONTEND=noninteractive apt-get install -y nvidia-container-toolkit
    fi
    do_ nvidia-ctk runtime configure --runtime=docker
    do_ systemctl restart docker
    say "GPUs: $(nvidia-smi -L | wc -l) (start compose with docker-compose.gpu.yml)"
else
    say "no NVIDIA driver here: sessions run without GPUs (SESSION_GPU_MODE=none, GPU_DISCOVERY=static)"
fi

# 4. directories --------------------------------------------------------------------------------
for d in data/training data/public-eval submissions backups; do do_ mkdir -p "$DATA_DIR/$d"; done
do_ mkdir -p "$DATA_DIR/data/holdouts"
# Hidden labels: only the platform's uid (10001, the API image's user) and root read them.
do_ chown 10001:10001 "$DATA_DIR/data/holdouts" "$DATA_DIR/submissions"
do_ chmod 0700 "$DATA_DIR/data/holdouts"

# 5. kernel -------------------------------------------------------------------------------------
do_ modprobe br_netfilter
do_ sh -c 'echo br_netfilter > /etc/modules-load.d/medforge.conf'
do_ sh -c 'printf "net.bridge.bridge-nf-call-iptables=1\nnet.bridge.bridge-nf-call-ip6tables=1\n" > /etc/sysctl.d/60-medforge.conf'
do_ sysctl -q --system

# 6. configuration ------------------------------------------------------------------------------
if [ ! -f "$COMPOSE_DIR/.env" ]; then
    say "writing $COMPOSE_DIR/.env from .env.example with generated secrets: review DOMAIN and images"
    secret() { head -c 48 /dev/urandom | base64 | tr -d '/+=\n' | head -c 50; }
    if [ "$DRY" = 1 ]; then echo "+ create $COMPOSE_DIR/.env"; else
        sed -e "s|^SECRET_KEY=.*|SECRET_KEY=$(secret)|" \
            -e "s|^DB_PASSWORD=.*|DB_PASSWORD=$(secret)|" \
            -e "s|^DB_ROOT_PASSWORD=.*|DB_ROOT_PASSWORD=$(secret)|" \
            -e "s|^MEDFORGE_DATA_DIR=.*|MEDFORGE_DATA_DIR=$DATA_DIR|" \
            "$COMPOSE_DIR/.env.example" >"$COMPOSE_DIR/.env"
        chmod 600 "$COMPOSE_DIR/.env"
    fi
fi

# 7. networks -----------------------------------------------------------------------------------
# compose creates both session networks with fixed subnets (internal: true for INTERNAL). A
# same-named network made by hand or by an older runtime would be reused with wrong settings.
for net in medforge-external-sessions medforge-internal-sessions; do
    project="$(docker network inspect "$net" -f '{{index .Labels "com.docker.compose.project"}}' 2>/dev/null || true)"
    if docker network inspect "$net" >/dev/null 2>&1 && [ "$project" != medforge ]; then
        msg="network $net exists but was not created by compose: stop its containers and 'docker network rm $net', then docker compose up"
        if [ "$DRY" = 1 ]; then say "WARNING: $msg"; else die "$msg"; fi
    fi
done

say "done. Next: cd deploy/compose && docker compose up -d; then sudo ops/firewall.sh --apply;"
say "then ops/validate.sh https://medforge.<DOMAIN> (docs/runbook.md)"
