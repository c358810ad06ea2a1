#!/usr/bin/env bash
# Make a fresh Debian 12 host ready for MedForge's tests and local run: the system packages the
# build and the test suite need, a Docker daemon, MariaDB on 127.0.0.1:3306 (root, no password)
# and Redis on 127.0.0.1:6379. Idempotent and cheap when everything is already there; safe to
# call from two processes at once (the test command and the run command may race).
#
#   MEDFORGE_SKIP_BROWSER=1   do not install the test-only tools (chromium, chromium-driver,
#                             promtool); the run command sets it
#   MEDFORGE_WAIT_SECONDS=30  how long to wait for each daemon to answer
#
# No systemd runs on these machines, so daemons are started directly and detached.
set -euo pipefail

WAIT_SECONDS="${MEDFORGE_WAIT_SECONDS:-30}"
DOCKERD_LOG=/var/log/medforge-dockerd.log
LOCK_FILE=/run/lock/medforge-ensure-system.lock

say() { echo "ensure-system: $*"; }
die() { echo "ensure-system: ERROR: $*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# --- serialise concurrent callers ---------------------------------------------------------------
# Two callers starting dockerd at the same moment make the loser fail on docker.pid, and two
# apt-get runs fight over the dpkg lock; one lock around the whole script avoids both.
if is_root; then
    mkdir -p "$(dirname "$LOCK_FILE")"
    # Every daemon started below gets `9>&-`: a daemon that inherited fd 9 would hold the lock
    # for its whole life and hang the next caller.
    exec 9>"$LOCK_FILE"
    if ! flock -w 900 9; then
        die "another ensure-system run held $LOCK_FILE for 15 minutes"
    fi
fi

# --- packages -----------------------------------------------------------------------------------
pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

# A package counts as present when dpkg says so or when the command it provides already exists
# (e.g. docker-ce instead of docker.io: installing docker.io over it would conflict).
want=()
need_pkg() {  # need_pkg PACKAGE [COMMAND...]
    local pkg="$1"; shift
    pkg_installed "$pkg" && return 0
    if [ "$#" -gt 0 ]; then
        local cmd all=1
        for cmd in "$@"; do command -v "$cmd" >/dev/null 2>&1 || all=0; done
        [ "$all" -eq 1 ] && return 0
    fi
    want+=("$pkg")
}

need_pkg libmariadb-dev
need_pkg pkg-config pkg-config
need_pkg docker.io docker dockerd
need_pkg caddy caddy
need_pkg debootstrap debootstrap
need_pkg wrk wrk
need_pkg mariadb-server mariadbd
need_pkg redis-server redis-server redis-cli
if [ "${MEDFORGE_SKIP_BROWSER:-0}" != "1" ]; then
    need_pkg chromium chromium
    need_pkg chromium-driver chromedriver
    # promtool (Debian's prometheus package) checks deploy/prometheus in the test suite.
    need_pkg prometheus promtool
fi

if [ "${#want[@]}" -gt 0 ]; then
    is_root || die "missing packages (${want[*]}) and not root: run this script as root"
    export DEBIAN_FRONTEND=noninteractive
    # Keep package maintainer scripts from starting daemons themselves (no init system here; we
    # start them below with the flags we want). Only if nobody else put a policy in place.
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        own_policy=1
        trap 'rm -f "$policy"' EXIT
    fi
    # Quiet on success; the full apt output is shown only when something fails.
    export NEEDRESTART_SUSPEND=1
    apt_log="$(mktemp)"
    say "apt-get update"
    if ! apt-get -q update >"$apt_log" 2>&1; then
        cat "$apt_log" >&2; die "apt-get update failed"
    fi
    say "installing ${want[*]}"
    if ! apt-get -q install -y --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${want[@]}" >"$apt_log" 2>&1 9>&-; then
        tail -n 40 "$apt_log" >&2; die "apt-get install ${want[*]} failed"
    fi
    rm -f "$apt_log"
    if [ "$own_policy" -eq 1 ]; then
        rm -f "$policy"
        trap - EXIT
    fi
fi

wait_for() {  # wait_for SECONDS COMMAND... : poll once a second until COMMAND succeeds
    local seconds="$1"; shift
    local i
    for ((i = 0; i < seconds; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 1
    done
    "$@" >/dev/null 2>&1
}

# --- Docker -------------------------------------------------------------------------------------
docker_ok() { timeout 10 docker info >/dev/null 2>&1; }

start_dockerd() {  # start_dockerd DRIVER -> 0 when the daemon answers
    local driver="$1" pid
    # A pid file left by a dead daemon makes dockerd refuse to start.
    if [ -s /var/run/docker.pid ]; then
        pid="$(cat /var/run/docker.pid)"
        if kill -0 "$pid" 2>/dev/null; then
            say "dockerd (pid $pid) is running but not answering yet; waiting"
            wait_for "$WAIT_SECONDS" docker_ok && return 0
            return 1
        fi
        rm -f /var/run/docker.pid
    fi
    say "starting dockerd --storage-driver=$driver (log: $DOCKERD_LOG)"
    echo "=== $(date -u +%FT%TZ) ensure-system: dockerd --storage-driver=$driver" >>"$DOCKERD_LOG"
    setsid dockerd --storage-driver="$driver" --iptables=false \
        </dev/null >>"$DOCKERD_LOG" 2>&1 9>&- &
    pid=$!
    local i
    for ((i = 0; i < WAIT_SECONDS; i++)); do
        docker_ok && return 0
        kill -0 "$pid" 2>/dev/null || break   # it gave up (e.g. driver not supported)
        sleep 1
    done
    docker_ok && return 0
    # Do not leave a half-started daemon holding docker.pid before the next attempt.
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        wait_for 15 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
    fi
    return 1
}

if ! docker_ok; then
    is_root || die "Docker daemon does not answer and not root: start dockerd first"
    command -v dockerd >/dev/null 2>&1 || die "dockerd not found after installing docker.io"
    if start_dockerd overlay2; then
        :
    else
        say "overlay2 did not work; falling back to vfs (slower, uses more disk)"
        start_dockerd vfs || die "dockerd did not answer within ${WAIT_SECONDS}s with overlay2 or vfs; see $DOCKERD_LOG"
    fi
    say "dockerd answers (storage driver: $(docker info --format '{{.Driver}}' 2>/dev/null || echo '?'))"
fi

# --- MariaDB ------------------------------------------------------------------------------------
mariadb_client() {
    if command -v mariadb >/dev/null 2>&1; then mariadb "$@"; else mysql "$@"; fi
}
mariadb_tcp_ok() {
    mariadb_client --protocol=tcp -h 127.0.0.1 -P 3306 -u root --connect-timeout=3 \
        -e 'SELECT 1' >/dev/null 2>&1
}
mariadb_port_open() { timeout 2 bash -c ': </dev/tcp/127.0.0.1/3306' 2>/dev/null; }

if ! mariadb_tcp_ok; then
    is_root || die "MariaDB does not answer on 127.0.0.1:3306 and not root"
    if ! mariadb_port_open; then
        [ -x /usr/sbin/mariadbd ] || die "/usr/sbin/mariadbd missing after installing mariadb-server"
        mkdir -p /run/mysqld /var/log/mysql
        chown mysql:mysql /run/mysqld /var/log/mysql 2>/dev/null || true
        if [ ! -d /var/lib/mysql/mysql ]; then
            say "initialising the MariaDB data directory"
            mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null 2>&1 9>&- \
                || die "mariadb-install-db failed"
        fi
        say "starting mariadbd"
        start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd 9>&- \
            || die "could not start mariadbd"
        wait_for "$WAIT_SECONDS" mariadb_port_open \
            || die "mariadbd did not listen on 127.0.0.1:3306 within ${WAIT_SECONDS}s; see /var/log/mysql/error.log"
    fi
    if ! wait_for 5 mariadb_tcp_ok; then
        # A stock Debian install lets root in only through the unix socket; the test suite and
        # the local run connect over TCP as root with an empty password, so allow exactly that.
        say "granting root@127.0.0.1 (empty password) over the local socket"
        mariadb_client -u root -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
            GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
            CREATE USER IF NOT EXISTS 'root'@'localhost';
            ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket;
            FLUSH PRIVILEGES;" >/dev/null 2>&1 || true
        mariadb_tcp_ok || die "MariaDB listens on 127.0.0.1:3306 but root with an empty password cannot log in"
    fi
    say "mariadb answers on 127.0.0.1:3306"
fi

# --- Redis --------------------------------------------------------------------------------------
redis_ok() { [ "$(timeout 3 redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

if ! redis_ok; then
    is_root || die "Redis does not answer on 127.0.0.1:6379 and not root"
    mkdir -p /var/lib/redis /var/log/redis
    say "starting redis-server"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null 9>&- \
        || die "could not start redis-server; see /var/log/redis/ci.log"
    wait_for "$WAIT_SECONDS" redis_ok \
        || die "redis did not answer on 127.0.0.1:6379 within ${WAIT_SECONDS}s; see /var/log/redis/ci.log"
    say "redis answers on 127.0.0.1:6379"
fi

say "ready"
