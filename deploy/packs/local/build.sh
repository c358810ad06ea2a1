#!/usr/bin/env bash
# Build the local session pack, medforge/pack-local:dev, without any container registry:
# debootstrap a minimal Debian bookworm with python3 (cached as a tarball), add the stand-in IDE
# and `docker import` the result. The image ID (sha256:...) is the LAST line of stdout; everything
# else goes to stderr. The platform pins packs by that content-addressed ID.
#
# Cheap when nothing changed: an image labelled with the sha256 of ide.py + build.sh is reused
# (about a second). Safe to run from several processes at once (flock).
#
#   MEDFORGE_CACHE_DIR          where the rootfs tarball and .deb cache live (/var/cache/medforge)
#   MEDFORGE_DEBOOTSTRAP_MIRROR Debian mirror for debootstrap (default: the host's apt mirror)
#   MEDFORGE_PACK_LOCAL_IMAGE   image reference to tag (medforge/pack-local:dev)
#   MEDFORGE_PACK_REBUILD=1     ignore the cached image (the rootfs tarball is still reused)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IMAGE="${MEDFORGE_PACK_LOCAL_IMAGE:-medforge/pack-local:dev}"
CACHE_DIR="${MEDFORGE_CACHE_DIR:-/var/cache/medforge}"
SUITE=bookworm
# Packages on top of minbase. python3 (not python3-minimal): http.server, json, email live there.
INCLUDE=python3
LABEL_KEY=medforge.pack.source-sha256
# Bump when the rootfs recipe below changes, so old cached tarballs are not reused.
ROOTFS_RECIPE=1

log() { echo "pack-local: $*" >&2; }
die() { echo "pack-local: ERROR: $*" >&2; exit 1; }

# The host's own Debian mirror for bookworm: deb822 *.sources first, then one-line *.list files.
host_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        uri="$(awk -v suite="$SUITE" '
            BEGIN { RS = "" }
            {
                uris = ""; ok = 0; enabled = 1
                n = split($0, lines, "\n")
                for (i = 1; i <= n; i++) {
                    line = lines[i]
                    if (line ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", line); split(line, u, /[ \t]+/); uris = u[1] }
                    if (line ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", line); m = split(line, s, /[ \t]+/); for (j = 1; j <= m; j++) if (s[j] == suite) ok = 1 }
                    if (line ~ /^Enabled:[ \t]*no/) enabled = 0
                }
                if (ok && enabled && uris ~ /^(https?|file):/) { print uris; exit }
            }' "$f")"
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        uri="$(awk -v suite="$SUITE" '
            $1 == "deb" { i = 2; if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                          if ($(i + 1) == suite) { print $i; exit } }' "$f")"
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
    echo "http://deb.debian.org/debian"
}

command -v docker >/dev/null 2>&1 || die "docker CLI not found (run scripts/ensure-system.sh)"
timeout 20 docker info >/dev/null 2>&1 || die "the Docker daemon does not answer (run scripts/ensure-system.sh)"

mkdir -p "$CACHE_DIR" 2>/dev/null || die "cannot create $CACHE_DIR (set MEDFORGE_CACHE_DIR to a writable directory)"
exec 8>"$CACHE_DIR/pack-local.lock"
flock 8 || die "could not lock $CACHE_DIR/pack-local.lock"

SOURCE_SHA="$(cat "$HERE/ide.py" "$HERE/build.sh" | sha256sum | cut -d' ' -f1)"

# --- reuse an image built from the same sources ------------------------------------------------
if [ "${MEDFORGE_PACK_REBUILD:-0}" != "1" ]; then
    # Images derived FROM the pack (tests build variants with another entrypoint) inherit its
    # label, so the label alone is not proof: accept only an image whose own command is the IDE.
    existing=""
    current="$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
    for candidate in $current $(docker images -q --no-trunc --filter "label=$LABEL_KEY=$SOURCE_SHA"); do
        label="$(docker image inspect --format "{{index .Config.Labels \"$LABEL_KEY\"}}" "$candidate" 2>/dev/null || true)"
        [ "$label" = "$SOURCE_SHA" ] || continue
        shape="$(docker image inspect --format '{{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$candidate" 2>/dev/null || true)"
        if [ "$shape" = 'null ["python3","/opt/medforge/ide.py"]' ]; then
            existing="$candidate"
            break
        fi
    done
    if [ -n "$existing" ]; then
        docker tag "$existing" "$IMAGE"
        log "up to date: $IMAGE ($existing)"
        echo "$existing"
        exit 0
    fi
fi

# --- the rootfs tarball (slow once: debootstrap) ------------------------------------------------
ROOTFS_TAR="$CACHE_DIR/rootfs-$SUITE-minbase-$(echo "$SUITE $INCLUDE $ROOTFS_RECIPE" | sha256sum | cut -c1-12).tar"

cleanup_dir() {  # remove a scratch tree, never following a mount left inside it
    local dir="$1" mnt
    [ -n "$dir" ] && [ -d "$dir" ] || return 0
    # debootstrap mounts proc/sys inside the target; unmount anything still there first.
    while read -r mnt; do
        umount -l "$mnt" 2>/dev/null || true
    done < <(awk -v d="$dir" 'index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r)
    if awk -v d="$dir" 'index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/mounts; then
        log "not removing $dir: something is still mounted inside it"
        return 0
    fi
    rm -rf --one-file-system "$dir"
}

if [ ! -s "$ROOTFS_TAR" ]; then
    [ "$(id -u)" -eq 0 ] || die "building the rootfs needs root (debootstrap, chroot)"
    command -v debootstrap >/dev/null 2>&1 || die "debootstrap not found (run scripts/ensure-system.sh)"
    MIRROR="${MEDFORGE_DEBOOTSTRAP_MIRROR:-$(host_mirror)}"
    work="$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")"
    trap 'cleanup_dir "$work"; rm -f "${ROOTFS_TAR}.tmp"' EXIT
    mkdir -p "$CACHE_DIR/debs"
    log "debootstrap --variant=minbase --include=$INCLUDE $SUITE from $MIRROR (once; a few minutes)"
    started=$SECONDS
    if ! debootstrap --variant=minbase --include="$INCLUDE" --components=main \
        --cache-dir="$CACHE_DIR/debs" "$SUITE" "$work/root" "$MIRROR" >"$work/debootstrap.log" 2>&1; then
        tail -n 30 "$work/debootstrap.log" >&2
        [ -f "$work/root/debootstrap/debootstrap.log" ] && tail -n 30 "$work/root/debootstrap/debootstrap.log" >&2
        die "debootstrap failed (mirror $MIRROR; override with MEDFORGE_DEBOOTSTRAP_MIRROR)"
    fi
    log "debootstrap took $((SECONDS - started))s"

    root="$work/root"
    # The IDE's user and workspace: uid/gid 1000 as the container contract requires.
    chroot "$root" /usr/sbin/groupadd --gid 1000 coder
    chroot "$root" /usr/sbin/useradd --uid 1000 --gid 1000 --create-home --home-dir /home/coder \
        --shell /bin/bash coder
    install -d -o 1000 -g 1000 -m 0755 "$root/workspace"
    install -d -o 0 -g 0 -m 0755 "$root/opt/medforge"
    echo "deb $MIRROR $SUITE main" >"$root/etc/apt/sources.list"
    # Docker provides /dev, /proc, /sys, hostname and resolv.conf at run time; drop what the image
    # does not need so the import stays small and fast.
    rm -rf "${root:?}"/dev/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
        "$root"/var/cache/apt/archives/*.deb "$root"/debootstrap \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true
    find "$root/var/log" -type f -delete
    : >"$root/etc/hostname"
    tar --numeric-owner -C "$root" -cf "${ROOTFS_TAR}.tmp" .
    mv "${ROOTFS_TAR}.tmp" "$ROOTFS_TAR"
    cleanup_dir "$work"
    trap - EXIT
    log "cached rootfs: $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1))"
fi

# --- the image: rootfs + ide.py, imported in one layer ------------------------------------------
stage="$(mktemp -d "$CACHE_DIR/stage.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
cp "$ROOTFS_TAR" "$stage/image.tar"
install -D -m 0755 "$HERE/ide.py" "$stage/add/opt/medforge/ide.py"
tar --numeric-owner --owner=0 --group=0 -C "$stage/add" -rf "$stage/image.tar" ./opt/medforge/ide.py

log "importing $IMAGE"
docker import \
    --change "USER 1000:1000" \
    --change "WORKDIR /workspace" \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV HOME=/home/coder" \
    --change "ENV LANG=C.UTF-8" \
    --change "ENV PYTHONUNBUFFERED=1" \
    --change "ENV PYTHONDONTWRITEBYTECODE=1" \
    --change "EXPOSE 8080" \
    --change "LABEL $LABEL_KEY=$SOURCE_SHA" \
    --change "LABEL org.opencontainers.image.title=medforge-pack-local" \
    --change 'LABEL org.opencontainers.image.description="MedForge stand-in IDE for local runs and tests"' \
    --change 'CMD ["python3", "/opt/medforge/ide.py"]' \
    --message "medforge pack-local $SOURCE_SHA" \
    "$stage/image.tar" "$IMAGE" >/dev/null

image_id="$(docker image inspect --format '{{.Id}}' "$IMAGE")"
log "built $IMAGE ($image_id)"
echo "$image_id"
